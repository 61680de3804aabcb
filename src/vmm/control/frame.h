/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Splits a QMP input byte stream into messages. QMP has no length prefix or delimiter: a
 * message is one JSON value, and clients may send several in one write or one in many
 * writes, with or without newlines. The framer tracks just enough of the JSON lexical
 * structure (strings, escapes, bracket depth) to find where a top-level value ends;
 * the real parsing and all validation happen afterwards in json_parse().
 *
 * Garbage at the top level (anything not starting with '{' or '[') is cut into a message
 * at the next whitespace, '{' or '[', so a stray word gets its own error instead of
 * swallowing what follows. A raw newline inside a string ends the message as well (JSON
 * forbids it there), so an interactive client with an unbalanced quote gets an error at
 * the end of its line instead of silence. Likewise a byte that cannot occur in JSON outside
 * a string (a bad token: `{"execute": nope`) ends the message at once. A message longer than the
 * cap is reported once (as too large) as soon as the cap is crossed, and the rest of it is skipped
 * while its structure is still tracked, so the stream resynchronises at its end.
 */
#ifndef VMIG_VMM_CONTROL_FRAME_H
#define VMIG_VMM_CONTROL_FRAME_H

#include <stdbool.h>
#include <stddef.h>

struct frame {
	char *buf;
	size_t len, max;
	size_t depth;
	bool in_msg, in_str, esc, scalar, overflow;
};

/*
 * One message: msg[0..len) (NUL-terminated), or msg NULL when a message crossed the cap.
 * Return false to stop feeding (the client is going away).
 */
typedef bool (*frame_msg_fn)(void *opaque, const char *msg, size_t len);

int frame_init(struct frame *f, size_t max);
void frame_fini(struct frame *f);
/* Feeds bytes; calls fn for every message completed. False if fn asked to stop. */
bool frame_feed(struct frame *f, const char *data, size_t len, frame_msg_fn fn, void *opaque);
/* True while a message has started but not ended (a client that disconnects mid-message). */
bool frame_pending(const struct frame *f);

#endif
