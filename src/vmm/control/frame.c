// SPDX-License-Identifier: Apache-2.0
/* QMP input framing: see frame.h. */
#include "vmm/control/frame.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

/* What one input byte does (bits). */
enum {
	F_STORE = 1, /* part of the message */
	F_DONE = 2,  /* the message ends here (after storing, if F_STORE) */
	F_AGAIN = 4, /* ... and this byte starts the next message: look at it again */
};

int frame_init(struct frame *f, size_t max)
{
	*f = (struct frame){.max = max};
	f->buf = malloc(max + 1);
	return f->buf ? 0 : -ENOMEM;
}

void frame_fini(struct frame *f)
{
	free(f->buf);
	f->buf = NULL;
}

bool frame_pending(const struct frame *f)
{
	return f->in_msg;
}

static bool frame_is_ws(char c)
{
	return c == ' ' || c == '\t' || c == '\n' || c == '\r';
}

/*
 * Outside strings JSON has only structure, numbers and the literals true/false/null. Any
 * other byte inside a structure makes the message invalid whatever follows, so it ends
 * there and the client gets its error now; a client that never closes its brackets would
 * otherwise wait for an answer forever (QMP's own parser reports such tokens at once).
 */
static bool frame_is_token_byte(char c)
{
	return frame_is_ws(c) || (c >= '0' && c <= '9') ||
	       (c && strchr("{}[],:-+.eE\"truefalsn", c));
}

static int frame_start(struct frame *f, char c)
{
	if (frame_is_ws(c))
		return 0;
	f->in_msg = true;
	f->len = 0;
	f->depth = 0;
	f->in_str = f->esc = f->scalar = f->overflow = false;
	if (c == '{' || c == '[') {
		f->depth = 1;
	} else if (c == '}' || c == ']') {
		return F_STORE | F_DONE; /* a stray closer: a message of its own (an error) */
	} else {
		f->scalar = true;
		f->in_str = c == '"';
	}
	return F_STORE;
}

static int frame_string_byte(struct frame *f, char c)
{
	if (f->esc) {
		f->esc = false;
	} else if (c == '\\') {
		f->esc = true;
	} else if (c == '"') {
		f->in_str = false;
		return f->scalar ? F_STORE | F_DONE : F_STORE;
	} else if (c == '\n') {
		return F_DONE; /* invalid in a string anyway: report it now, not never */
	}
	return F_STORE;
}

static int frame_step(struct frame *f, char c)
{
	if (!f->in_msg)
		return frame_start(f, c);
	if (f->in_str)
		return frame_string_byte(f, c);
	if (f->scalar) {
		if (frame_is_ws(c))
			return F_DONE;
		if (c == '{' || c == '[')
			return F_DONE | F_AGAIN;
		return F_STORE;
	}
	if (!frame_is_token_byte(c))
		return F_STORE | F_DONE;
	if (c == '"') {
		f->in_str = true;
	} else if (c == '{' || c == '[') {
		f->depth++;
	} else if (c == '}' || c == ']') {
		if (--f->depth == 0)
			return F_STORE | F_DONE;
	}
	return F_STORE;
}

/* Stores one byte; true when this byte crossed the cap (reported once per message). */
static bool frame_store(struct frame *f, char c)
{
	if (f->overflow)
		return false;
	if (f->len == f->max) {
		f->overflow = true;
		return true;
	}
	f->buf[f->len++] = c;
	return false;
}

bool frame_feed(struct frame *f, const char *data, size_t len, frame_msg_fn fn, void *opaque)
{
	size_t i = 0;

	while (i < len) {
		int act = frame_step(f, data[i]);
		if ((act & F_STORE) && frame_store(f, data[i]) && !fn(opaque, NULL, 0))
			return false;
		if (!(act & F_AGAIN))
			i++;
		if (!(act & F_DONE))
			continue;
		f->in_msg = false;
		if (f->overflow)
			continue;
		f->buf[f->len] = 0;
		if (!fn(opaque, f->buf, f->len))
			return false;
	}
	return true;
}
