/* SPDX-License-Identifier: Apache-2.0 */
/*
 * A small, strict, bounded JSON (RFC 8259) parser and writer for the control socket.
 *
 * Parsing builds a tree (json_parse -> struct json_value, freed with json_free). It is
 * strict: one value and nothing but whitespace after it, no comments, no trailing commas,
 * no duplicate object keys, strings must be valid UTF-8 (no overlong forms, no surrogates)
 * with the standard escapes only (\u surrogate pairs combined; a lone surrogate or \u0000
 * is refused because strings are handed out as C strings). Numbers without a fraction or
 * exponent are integers and must fit int64; others are doubles and must be finite.
 * Limits (input size, nesting depth, number of values) bound time and memory, so hostile
 * input costs at most O(limit). Every refusal names the byte offset where it was found.
 *
 * Writing is streaming (struct json_writer): begin/end object or array, key, scalars; the
 * writer inserts the separators, escapes strings, and stops at a size cap. Errors are
 * sticky and reported once at the end (json_writer_error).
 */
#ifndef VMIG_COMMON_JSON_H
#define VMIG_COMMON_JSON_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

enum json_type {
	JSON_NULL,
	JSON_BOOL,
	JSON_INT,
	JSON_DOUBLE,
	JSON_STRING,
	JSON_ARRAY,
	JSON_OBJECT,
};

struct json_member;

struct json_value {
	enum json_type type;
	union {
		bool b;
		int64_t i;
		double d;
		struct {
			char *s; /* NUL-terminated, valid UTF-8, no embedded NUL */
			size_t len;
		} str;
		struct {
			struct json_value *items;
			size_t n;
		} arr;
		struct {
			struct json_member *members; /* in input order, keys distinct */
			size_t n;
		} obj;
	};
};

struct json_member {
	char *key;
	size_t key_len;
	struct json_value value;
};

struct json_limits {
	size_t max_size;    /* input bytes */
	unsigned max_depth; /* nested arrays/objects; 1 = scalars and one flat container */
	size_t max_values;  /* values in the whole document (keys not counted) */
};

/* What the control socket uses: 64 KiB, depth 32, 16384 values. */
extern const struct json_limits json_default_limits;

struct json_error {
	size_t pos;	 /* byte offset in the input */
	const char *msg; /* static text, e.g. "expected ':'" */
};

/*
 * Parses text[0..len) (need not be NUL-terminated). 0 and *out on success; -EINVAL for
 * malformed input, -E2BIG when a limit is exceeded, -ENOMEM; then err says where and why
 * and nothing is allocated. lim NULL means json_default_limits.
 */
int json_parse(const char *text, size_t len, const struct json_limits *lim, struct json_value **out,
	       struct json_error *err);
void json_free(struct json_value *v);

/* Member of an object by key, or NULL (also when v is not an object). */
const struct json_value *json_object_get(const struct json_value *v, const char *key);
bool json_equal(const struct json_value *a, const struct json_value *b);
const char *json_type_name(enum json_type t);

/* Writer ------------------------------------------------------------------------------ */

struct json_writer {
	char *buf; /* NUL-terminated text so far */
	size_t len, cap, max;
	int err;   /* first error: -ENOMEM, -E2BIG (over max), -EINVAL (misuse, NaN) */
	int state; /* internal: what the last token was, for separators */
	unsigned depth;
};

/* max: the largest text the writer may produce (the cap for one reply or event). */
void json_writer_init(struct json_writer *w, size_t max);
void json_writer_fini(struct json_writer *w);
/* 0, or the first error; the text is complete only when this is 0 and depth is 0. */
int json_writer_error(const struct json_writer *w);
/* Takes the buffer (caller frees); the writer is empty afterwards. */
char *json_writer_take(struct json_writer *w, size_t *len);

void json_write_begin_object(struct json_writer *w);
void json_write_end_object(struct json_writer *w);
void json_write_begin_array(struct json_writer *w);
void json_write_end_array(struct json_writer *w);
void json_write_key(struct json_writer *w, const char *key);
void json_write_string(struct json_writer *w, const char *s);
void json_write_string_n(struct json_writer *w, const char *s, size_t len);
void json_write_int(struct json_writer *w, int64_t v);
void json_write_uint(struct json_writer *w, uint64_t v);
void json_write_double(struct json_writer *w, double v);
void json_write_bool(struct json_writer *w, bool v);
void json_write_null(struct json_writer *w);
void json_write_value(struct json_writer *w, const struct json_value *v);
/* Pre-formatted JSON text, trusted to be one valid value (for queued events). */
void json_write_raw(struct json_writer *w, const char *text, size_t len);

#endif
