// SPDX-License-Identifier: Apache-2.0
/* JSON parser (recursive descent, bounded) and streaming writer: see json.h. */
#include "common/json.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

const struct json_limits json_default_limits = {
    .max_size = 64 * 1024, .max_depth = 32, .max_values = 16384};

/* UTF-8 ------------------------------------------------------------------------------ */

/*
 * Decodes one UTF-8 sequence at s[0..avail). Returns its length and the code point, or 0
 * for anything RFC 3629 forbids (overlong forms, surrogates, > U+10FFFF, truncation).
 */
static size_t utf8_decode(const unsigned char *s, size_t avail, uint32_t *cp)
{
	static const uint32_t min_cp[5] = {0, 0, 0x80, 0x800, 0x10000};
	size_t n;
	uint32_t c = s[0];

	if (c < 0x80) {
		*cp = c;
		return 1;
	}
	/* The lead byte gives the length and the payload bits it carries. */
	if ((c & 0xE0) == 0xC0) {
		n = 2;
		c &= 0x1F;
	} else if ((c & 0xF0) == 0xE0) {
		n = 3;
		c &= 0x0F;
	} else if ((c & 0xF8) == 0xF0) {
		n = 4;
		c &= 0x07;
	} else {
		return 0;
	}
	if (avail < n)
		return 0;
	for (size_t i = 1; i < n; i++) {
		if ((s[i] & 0xC0) != 0x80)
			return 0;
		c = (c << 6) | (s[i] & 0x3F);
	}
	if (c < min_cp[n] || c > 0x10FFFF || (c >= 0xD800 && c <= 0xDFFF))
		return 0;
	*cp = c;
	return n;
}

static size_t utf8_encode(uint32_t cp, char *out)
{
	if (cp < 0x80) {
		out[0] = (char)cp;
		return 1;
	}
	if (cp < 0x800) {
		out[0] = (char)(0xC0 | (cp >> 6));
		out[1] = (char)(0x80 | (cp & 0x3F));
		return 2;
	}
	if (cp < 0x10000) {
		out[0] = (char)(0xE0 | (cp >> 12));
		out[1] = (char)(0x80 | ((cp >> 6) & 0x3F));
		out[2] = (char)(0x80 | (cp & 0x3F));
		return 3;
	}
	out[0] = (char)(0xF0 | (cp >> 18));
	out[1] = (char)(0x80 | ((cp >> 12) & 0x3F));
	out[2] = (char)(0x80 | ((cp >> 6) & 0x3F));
	out[3] = (char)(0x80 | (cp & 0x3F));
	return 4;
}

/* Parser ------------------------------------------------------------------------------ */

struct parser {
	const char *s;
	size_t len, pos;
	const struct json_limits *lim;
	unsigned depth;
	size_t values;
	struct json_error *err;
};

static int parse_fail(struct parser *p, size_t pos, int code, const char *msg)
{
	p->err->pos = pos;
	p->err->msg = msg;
	return code;
}

static void parse_skip_ws(struct parser *p)
{
	while (p->pos < p->len) {
		char c = p->s[p->pos];
		if (c != ' ' && c != '\t' && c != '\n' && c != '\r')
			break;
		p->pos++;
	}
}

static int parse_value(struct parser *p, struct json_value *v);

static int parse_literal(struct parser *p, const char *word, struct json_value *v, enum json_type t,
			 bool b)
{
	size_t n = strlen(word);

	if (p->len - p->pos < n || memcmp(p->s + p->pos, word, n) != 0)
		return parse_fail(p, p->pos, -EINVAL, "invalid literal");
	p->pos += n;
	v->type = t;
	v->b = b;
	return 0;
}

static int hex4(const char *s, uint32_t *out)
{
	uint32_t v = 0;

	for (int i = 0; i < 4; i++) {
		char c = s[i];
		v <<= 4;
		if (c >= '0' && c <= '9')
			v |= (uint32_t)(c - '0');
		else if (c >= 'a' && c <= 'f')
			v |= (uint32_t)(c - 'a' + 10);
		else if (c >= 'A' && c <= 'F')
			v |= (uint32_t)(c - 'A' + 10);
		else
			return -EINVAL;
	}
	*out = v;
	return 0;
}

/* \uXXXX at p->pos (after the backslash and 'u'), with a following low surrogate if any. */
static int parse_unicode_escape(struct parser *p, uint32_t *cp)
{
	size_t at = p->pos - 2;
	uint32_t hi, lo;

	if (p->len - p->pos < 4 || hex4(p->s + p->pos, &hi) < 0)
		return parse_fail(p, at, -EINVAL, "bad \\u escape");
	p->pos += 4;
	if (hi >= 0xDC00 && hi <= 0xDFFF)
		return parse_fail(p, at, -EINVAL, "lone low surrogate");
	if (hi >= 0xD800 && hi <= 0xDBFF) {
		if (p->len - p->pos < 6 || p->s[p->pos] != '\\' || p->s[p->pos + 1] != 'u' ||
		    hex4(p->s + p->pos + 2, &lo) < 0 || lo < 0xDC00 || lo > 0xDFFF)
			return parse_fail(p, at, -EINVAL, "lone high surrogate");
		p->pos += 6;
		hi = 0x10000 + ((hi - 0xD800) << 10) + (lo - 0xDC00);
	}
	if (hi == 0)
		return parse_fail(p, at, -EINVAL, "\\u0000 not supported");
	*cp = hi;
	return 0;
}

static int parse_escape(struct parser *p, char *out, size_t *n)
{
	uint32_t cp;
	char c;

	if (p->pos + 1 >= p->len)
		return parse_fail(p, p->pos, -EINVAL, "unterminated string");
	c = p->s[p->pos + 1];
	p->pos += 2;
	switch (c) {
	case '"':
	case '\\':
	case '/':
		out[(*n)++] = c;
		return 0;
	case 'b':
		out[(*n)++] = '\b';
		return 0;
	case 'f':
		out[(*n)++] = '\f';
		return 0;
	case 'n':
		out[(*n)++] = '\n';
		return 0;
	case 'r':
		out[(*n)++] = '\r';
		return 0;
	case 't':
		out[(*n)++] = '\t';
		return 0;
	case 'u':
		if (parse_unicode_escape(p, &cp) < 0)
			return -EINVAL;
		*n += utf8_encode(cp, out + *n);
		return 0;
	default:
		return parse_fail(p, p->pos - 2, -EINVAL, "invalid escape");
	}
}

/* Finds the closing quote first, so the decoded string (never longer) fits one buffer. */
static size_t string_extent(const struct parser *p)
{
	size_t i = p->pos + 1;

	while (i < p->len && p->s[i] != '"')
		i += p->s[i] == '\\' ? 2 : 1;
	return i;
}

/* A string at p->pos (the opening quote); *out is malloc'd and NUL-terminated. */
static int parse_string_raw(struct parser *p, char **out, size_t *out_len)
{
	size_t end = string_extent(p), n = 0;
	char *buf;

	if (end >= p->len)
		return parse_fail(p, p->pos, -EINVAL, "unterminated string");
	buf = malloc(end - p->pos + 1);
	if (!buf)
		return parse_fail(p, p->pos, -ENOMEM, "out of memory");
	p->pos++;
	while (p->pos < end) {
		unsigned char c = (unsigned char)p->s[p->pos];
		uint32_t cp;
		size_t k;
		int ret = 0;

		if (c == '\\') {
			ret = parse_escape(p, buf, &n);
		} else if (c < 0x20) {
			ret = parse_fail(p, p->pos, -EINVAL, "control character in string");
		} else if ((k = utf8_decode((const unsigned char *)p->s + p->pos, end - p->pos,
					    &cp)) == 0) {
			ret = parse_fail(p, p->pos, -EINVAL, "invalid UTF-8 in string");
		} else {
			memcpy(buf + n, p->s + p->pos, k);
			n += k;
			p->pos += k;
		}
		if (ret < 0) {
			free(buf);
			return ret;
		}
	}
	p->pos = end + 1;
	buf[n] = 0;
	*out = buf;
	*out_len = n;
	return 0;
}

static size_t scan_digits(const struct parser *p, size_t i)
{
	while (i < p->len && p->s[i] >= '0' && p->s[i] <= '9')
		i++;
	return i;
}

/* Integer part: '-'? ('0' | [1-9][0-9]*). Returns the end, or 0 on a bad form. */
static size_t scan_int_part(const struct parser *p, size_t i)
{
	if (i < p->len && p->s[i] == '-')
		i++;
	if (i >= p->len || p->s[i] < '0' || p->s[i] > '9')
		return 0;
	if (p->s[i] == '0')
		return i + 1;
	return scan_digits(p, i);
}

static int parse_int(struct parser *p, size_t start, size_t end, struct json_value *v)
{
	bool neg = p->s[start] == '-';
	uint64_t mag = 0, limit = neg ? (uint64_t)INT64_MAX + 1 : (uint64_t)INT64_MAX;

	for (size_t i = start + neg; i < end; i++) {
		unsigned d = (unsigned)(p->s[i] - '0');
		if (mag > (limit - d) / 10)
			return parse_fail(p, start, -EINVAL, "integer out of range");
		mag = mag * 10 + d;
	}
	v->type = JSON_INT;
	v->i = neg ? (int64_t)(0 - mag) : (int64_t)mag;
	return 0;
}

static int parse_double(struct parser *p, size_t start, size_t end, struct json_value *v)
{
	char tmp[64];
	char *stop;

	if (end - start >= sizeof(tmp))
		return parse_fail(p, start, -EINVAL, "number too long");
	memcpy(tmp, p->s + start, end - start);
	tmp[end - start] = 0;
	double d = strtod(tmp, &stop);
	if (*stop || !isfinite(d))
		return parse_fail(p, start, -EINVAL, "number out of range");
	v->type = JSON_DOUBLE;
	v->d = d;
	return 0;
}

static int parse_number(struct parser *p, struct json_value *v)
{
	size_t start = p->pos, i = scan_int_part(p, start);
	bool is_double = false;

	if (i == 0)
		return parse_fail(p, start, -EINVAL, "invalid number");
	if (i < p->len && p->s[i] == '.') {
		size_t j = scan_digits(p, i + 1);
		if (j == i + 1)
			return parse_fail(p, i, -EINVAL, "digit expected after '.'");
		i = j;
		is_double = true;
	}
	if (i < p->len && (p->s[i] == 'e' || p->s[i] == 'E')) {
		size_t j = i + 1;
		if (j < p->len && (p->s[j] == '+' || p->s[j] == '-'))
			j++;
		size_t k = scan_digits(p, j);
		if (k == j)
			return parse_fail(p, i, -EINVAL, "digit expected in exponent");
		i = k;
		is_double = true;
	}
	p->pos = i;
	return is_double ? parse_double(p, start, i, v) : parse_int(p, start, i, v);
}

static int parse_enter(struct parser *p)
{
	if (p->depth >= p->lim->max_depth)
		return parse_fail(p, p->pos, -E2BIG, "nesting too deep");
	p->depth++;
	p->pos++; /* the '[' or '{' */
	parse_skip_ws(p);
	return 0;
}

/* After an element: ',' (more follow) -> 1, the closer -> 0, else an error. */
static int parse_separator(struct parser *p, char closer)
{
	parse_skip_ws(p);
	if (p->pos < p->len && p->s[p->pos] == ',') {
		p->pos++;
		parse_skip_ws(p);
		return 1;
	}
	if (p->pos < p->len && p->s[p->pos] == closer) {
		p->pos++;
		p->depth--;
		return 0;
	}
	return parse_fail(p, p->pos, -EINVAL,
			  closer == ']' ? "expected ',' or ']'" : "expected ',' or '}'");
}

static int grow(void **arr, size_t n, size_t *cap, size_t elem)
{
	if (n < *cap)
		return 0;
	size_t ncap = *cap ? *cap * 2 : 4;
	void *nv = realloc(*arr, ncap * elem);
	if (!nv)
		return -ENOMEM;
	*arr = nv;
	*cap = ncap;
	return 0;
}

static int parse_array(struct parser *p, struct json_value *v)
{
	size_t cap = 0;
	int ret = parse_enter(p);

	v->type = JSON_ARRAY;
	v->arr.items = NULL;
	v->arr.n = 0;
	if (ret < 0)
		return ret;
	if (p->pos < p->len && p->s[p->pos] == ']') {
		p->pos++;
		p->depth--;
		return 0;
	}
	do {
		if (grow((void **)&v->arr.items, v->arr.n, &cap, sizeof(*v->arr.items)) < 0)
			return parse_fail(p, p->pos, -ENOMEM, "out of memory");
		/* Counted before parsing: a failed element's partial tree is freed with v. */
		ret = parse_value(p, &v->arr.items[v->arr.n++]);
		if (ret < 0)
			return ret;
		ret = parse_separator(p, ']');
	} while (ret == 1);
	return ret;
}

static bool object_has_key(const struct json_value *v, const char *key, size_t len)
{
	for (size_t i = 0; i < v->obj.n; i++) {
		if (v->obj.members[i].key_len == len &&
		    memcmp(v->obj.members[i].key, key, len) == 0)
			return true;
	}
	return false;
}

/* One "key": value into the next member slot (already allocated). */
static int parse_member(struct parser *p, struct json_value *obj)
{
	struct json_member *m = &obj->obj.members[obj->obj.n];
	size_t at = p->pos, key_len;
	char *key;
	int ret;

	if (p->pos >= p->len || p->s[p->pos] != '"')
		return parse_fail(p, p->pos, -EINVAL, "expected a string key");
	ret = parse_string_raw(p, &key, &key_len);
	if (ret < 0)
		return ret;
	if (object_has_key(obj, key, key_len)) {
		free(key);
		return parse_fail(p, at, -EINVAL, "duplicate key");
	}
	/* Counted before the value is parsed: a failed value's partial tree is freed too. */
	m->key = key;
	m->key_len = key_len;
	m->value.type = JSON_NULL;
	obj->obj.n++;
	parse_skip_ws(p);
	if (p->pos >= p->len || p->s[p->pos] != ':')
		return parse_fail(p, p->pos, -EINVAL, "expected ':'");
	p->pos++;
	return parse_value(p, &m->value);
}

static int parse_object(struct parser *p, struct json_value *v)
{
	size_t cap = 0;
	int ret = parse_enter(p);

	v->type = JSON_OBJECT;
	v->obj.members = NULL;
	v->obj.n = 0;
	if (ret < 0)
		return ret;
	if (p->pos < p->len && p->s[p->pos] == '}') {
		p->pos++;
		p->depth--;
		return 0;
	}
	do {
		if (grow((void **)&v->obj.members, v->obj.n, &cap, sizeof(*v->obj.members)) < 0)
			return parse_fail(p, p->pos, -ENOMEM, "out of memory");
		ret = parse_member(p, v);
		if (ret < 0)
			return ret;
		ret = parse_separator(p, '}');
	} while (ret == 1);
	return ret;
}

/*
 * One value into *v. On failure *v is still a valid tree (containers hold only the
 * elements completed so far), so the caller frees it whole.
 */
static int parse_value(struct parser *p, struct json_value *v)
{
	v->type = JSON_NULL;
	parse_skip_ws(p);
	if (++p->values > p->lim->max_values)
		return parse_fail(p, p->pos, -E2BIG, "too many values");
	if (p->pos >= p->len)
		return parse_fail(p, p->pos, -EINVAL, "unexpected end of input");
	switch (p->s[p->pos]) {
	case '{':
		return parse_object(p, v);
	case '[':
		return parse_array(p, v);
	case '"':
		v->type = JSON_STRING;
		v->str.s = NULL;
		return parse_string_raw(p, &v->str.s, &v->str.len);
	case 't':
		return parse_literal(p, "true", v, JSON_BOOL, true);
	case 'f':
		return parse_literal(p, "false", v, JSON_BOOL, false);
	case 'n':
		return parse_literal(p, "null", v, JSON_NULL, false);
	default:
		if (p->s[p->pos] == '-' || (p->s[p->pos] >= '0' && p->s[p->pos] <= '9'))
			return parse_number(p, v);
		return parse_fail(p, p->pos, -EINVAL, "unexpected character");
	}
}

static void json_free_inner(struct json_value *v)
{
	switch (v->type) {
	case JSON_STRING:
		free(v->str.s);
		break;
	case JSON_ARRAY:
		for (size_t i = 0; i < v->arr.n; i++)
			json_free_inner(&v->arr.items[i]);
		free(v->arr.items);
		break;
	case JSON_OBJECT:
		for (size_t i = 0; i < v->obj.n; i++) {
			free(v->obj.members[i].key);
			json_free_inner(&v->obj.members[i].value);
		}
		free(v->obj.members);
		break;
	default:
		break;
	}
}

void json_free(struct json_value *v)
{
	if (!v)
		return;
	json_free_inner(v);
	free(v);
}

int json_parse(const char *text, size_t len, const struct json_limits *lim, struct json_value **out,
	       struct json_error *err)
{
	struct json_error dummy;
	struct parser p = {.s = text,
			   .len = len,
			   .lim = lim ? lim : &json_default_limits,
			   .err = err ? err : &dummy};
	struct json_value *v;
	int ret;

	*out = NULL;
	if (len > p.lim->max_size)
		return parse_fail(&p, p.lim->max_size, -E2BIG, "document too large");
	v = calloc(1, sizeof(*v));
	if (!v)
		return parse_fail(&p, 0, -ENOMEM, "out of memory");
	ret = parse_value(&p, v);
	if (ret == 0) {
		parse_skip_ws(&p);
		if (p.pos != p.len)
			ret = parse_fail(&p, p.pos, -EINVAL, "trailing characters");
	}
	if (ret < 0) {
		json_free(v);
		return ret;
	}
	*out = v;
	return 0;
}

/* Queries --------------------------------------------------------------------------- */

const struct json_value *json_object_get(const struct json_value *v, const char *key)
{
	if (!v || v->type != JSON_OBJECT)
		return NULL;
	for (size_t i = 0; i < v->obj.n; i++) {
		if (strcmp(v->obj.members[i].key, key) == 0)
			return &v->obj.members[i].value;
	}
	return NULL;
}

static bool json_object_equal(const struct json_value *a, const struct json_value *b)
{
	if (a->obj.n != b->obj.n)
		return false;
	for (size_t i = 0; i < a->obj.n; i++) {
		const struct json_value *o = json_object_get(b, a->obj.members[i].key);
		if (!o || !json_equal(&a->obj.members[i].value, o))
			return false;
	}
	return true;
}

bool json_equal(const struct json_value *a, const struct json_value *b)
{
	if (a->type != b->type)
		return false;
	switch (a->type) {
	case JSON_NULL:
		return true;
	case JSON_BOOL:
		return a->b == b->b;
	case JSON_INT:
		return a->i == b->i;
	case JSON_DOUBLE:
		return a->d == b->d;
	case JSON_STRING:
		return a->str.len == b->str.len && memcmp(a->str.s, b->str.s, a->str.len) == 0;
	case JSON_ARRAY:
		if (a->arr.n != b->arr.n)
			return false;
		for (size_t i = 0; i < a->arr.n; i++) {
			if (!json_equal(&a->arr.items[i], &b->arr.items[i]))
				return false;
		}
		return true;
	case JSON_OBJECT:
		return json_object_equal(a, b);
	}
	return false;
}

const char *json_type_name(enum json_type t)
{
	static const char *const names[] = {"null",   "boolean", "integer", "number",
					    "string", "array",	 "object"};
	return (unsigned)t < sizeof(names) / sizeof(names[0]) ? names[t] : "?";
}

/* Writer ------------------------------------------------------------------------------ */

enum { W_START, W_AFTER_OPEN, W_AFTER_KEY, W_AFTER_VALUE };

void json_writer_init(struct json_writer *w, size_t max)
{
	*w = (struct json_writer){.max = max};
}

void json_writer_fini(struct json_writer *w)
{
	free(w->buf);
	*w = (struct json_writer){.max = w->max};
}

int json_writer_error(const struct json_writer *w)
{
	if (w->err)
		return w->err;
	return w->depth ? -EINVAL : 0;
}

char *json_writer_take(struct json_writer *w, size_t *len)
{
	char *b = w->buf;

	if (len)
		*len = w->len;
	w->buf = NULL;
	w->len = w->cap = 0;
	w->state = W_START;
	return b;
}

static void w_put(struct json_writer *w, const char *s, size_t n)
{
	if (w->err)
		return;
	if (w->len + n > w->max) {
		w->err = -E2BIG;
		return;
	}
	if (w->len + n + 1 > w->cap) {
		size_t ncap = w->cap ? w->cap : 256;
		while (ncap < w->len + n + 1)
			ncap *= 2;
		char *nb = realloc(w->buf, ncap);
		if (!nb) {
			w->err = -ENOMEM;
			return;
		}
		w->buf = nb;
		w->cap = ncap;
	}
	memcpy(w->buf + w->len, s, n);
	w->len += n;
	w->buf[w->len] = 0;
}

/* The separator before a value or key; keys only inside objects (not checked). */
static void w_pre_value(struct json_writer *w)
{
	if (w->state == W_AFTER_VALUE)
		w_put(w, ", ", 2);
	w->state = W_AFTER_VALUE;
}

void json_write_begin_object(struct json_writer *w)
{
	w_pre_value(w);
	w_put(w, "{", 1);
	w->depth++;
	w->state = W_AFTER_OPEN;
}

void json_write_begin_array(struct json_writer *w)
{
	w_pre_value(w);
	w_put(w, "[", 1);
	w->depth++;
	w->state = W_AFTER_OPEN;
}

static void w_close(struct json_writer *w, const char *c)
{
	if (w->depth == 0 || w->state == W_AFTER_KEY) {
		if (!w->err)
			w->err = -EINVAL;
		return;
	}
	w_put(w, c, 1);
	w->depth--;
	w->state = W_AFTER_VALUE;
}

void json_write_end_object(struct json_writer *w)
{
	w_close(w, "}");
}

void json_write_end_array(struct json_writer *w)
{
	w_close(w, "]");
}

/* Escapes s; invalid UTF-8 bytes become U+FFFD so the output is always valid JSON. */
static void w_string_body(struct json_writer *w, const char *s, size_t len)
{
	size_t i = 0;

	while (i < len && !w->err) {
		unsigned char c = (unsigned char)s[i];
		uint32_t cp;
		size_t k;
		char esc[8];

		if (c == '"' || c == '\\') {
			esc[0] = '\\';
			esc[1] = (char)c;
			w_put(w, esc, 2);
			i++;
		} else if (c < 0x20 || c == 0x7F) {
			snprintf(esc, sizeof(esc), "\\u%04x", c);
			w_put(w, esc, 6);
			i++;
		} else if ((k = utf8_decode((const unsigned char *)s + i, len - i, &cp)) == 0) {
			w_put(w, "\\ufffd", 6);
			i++;
		} else {
			w_put(w, s + i, k);
			i += k;
		}
	}
}

void json_write_string_n(struct json_writer *w, const char *s, size_t len)
{
	w_pre_value(w);
	w_put(w, "\"", 1);
	w_string_body(w, s, len);
	w_put(w, "\"", 1);
}

void json_write_string(struct json_writer *w, const char *s)
{
	json_write_string_n(w, s, strlen(s));
}

void json_write_key(struct json_writer *w, const char *key)
{
	json_write_string(w, key);
	w_put(w, ": ", 2);
	w->state = W_AFTER_KEY;
}

void json_write_int(struct json_writer *w, int64_t v)
{
	char tmp[32];
	int n = snprintf(tmp, sizeof(tmp), "%lld", (long long)v);
	w_pre_value(w);
	w_put(w, tmp, (size_t)n);
}

void json_write_uint(struct json_writer *w, uint64_t v)
{
	char tmp[32];
	int n = snprintf(tmp, sizeof(tmp), "%llu", (unsigned long long)v);
	w_pre_value(w);
	w_put(w, tmp, (size_t)n);
}

void json_write_double(struct json_writer *w, double v)
{
	char tmp[40];

	if (!isfinite(v)) {
		if (!w->err)
			w->err = -EINVAL;
		return;
	}
	int n = snprintf(tmp, sizeof(tmp), "%.17g", v);
	/* Keep it a double when read back: "1" would come back as an integer. */
	if (!strpbrk(tmp, ".eE"))
		n += snprintf(tmp + n, sizeof(tmp) - (size_t)n, ".0");
	w_pre_value(w);
	w_put(w, tmp, (size_t)n);
}

void json_write_bool(struct json_writer *w, bool v)
{
	w_pre_value(w);
	w_put(w, v ? "true" : "false", v ? 4 : 5);
}

void json_write_null(struct json_writer *w)
{
	w_pre_value(w);
	w_put(w, "null", 4);
}

void json_write_raw(struct json_writer *w, const char *text, size_t len)
{
	w_pre_value(w);
	w_put(w, text, len);
}

void json_write_value(struct json_writer *w, const struct json_value *v)
{
	switch (v->type) {
	case JSON_NULL:
		json_write_null(w);
		break;
	case JSON_BOOL:
		json_write_bool(w, v->b);
		break;
	case JSON_INT:
		json_write_int(w, v->i);
		break;
	case JSON_DOUBLE:
		json_write_double(w, v->d);
		break;
	case JSON_STRING:
		json_write_string_n(w, v->str.s, v->str.len);
		break;
	case JSON_ARRAY:
		json_write_begin_array(w);
		for (size_t i = 0; i < v->arr.n; i++)
			json_write_value(w, &v->arr.items[i]);
		json_write_end_array(w);
		break;
	case JSON_OBJECT:
		json_write_begin_object(w);
		for (size_t i = 0; i < v->obj.n; i++) {
			json_write_key(w, v->obj.members[i].key);
			json_write_value(w, &v->obj.members[i].value);
		}
		json_write_end_object(w);
		break;
	}
}
