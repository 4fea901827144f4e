/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The query language of `metafs find`: a lexer and a recursive-descent
 * parser build the tree, then q_resolve gives every term its typed value.
 *
 * Query text comes from users and scripts, so nothing here may crash or
 * recurse without bound: queries are limited to Q_MAX_LEN bytes and to
 * Q_MAX_DEPTH levels of parentheses and negations, and runs of AND or OR
 * are built as balanced subtrees, so that a long flat query such as
 * `a b c ...` does not become a tree thousands of levels deep for every
 * backend that walks it.
 *
 * Lexing rules beyond the grammar in query.h:
 *  - "-" is a negation only at the start of a token: `a-b` is one word.
 *  - A free word ends at whitespace, "(" or ")"; a field value ends at
 *    whitespace or ")" only, as the grammar says.
 *  - In quotes, \" and \\ are the only escapes; any other backslash is kept,
 *    so that patterns and paths need no doubling.
 *  - An unquoted value holding ".." with text on both sides is a range,
 *    split at the first "..".
 *
 * Resolving, beyond query.h:
 *  - A date stands for its whole day, minute or second: `mtime:2024-01-01`
 *    is that day, `<=2024-01-31` and `..2024-01-31` include all of the 31st,
 *    `<2024-01-01` and `>=2024-01-01` start at its first nanosecond.
 *  - `user.NAME:` always means the xattr, which reaches xattrs named like a
 *    built-in field (`user.name:x`).
 *  - A quoted xattr value is a string even when it reads as a number.
 *  - path values are normalized in place: one slash between components, no
 *    trailing slash, "." and ".." folded, as paths are stored in the index.
 *  - Ranges whose ends are written in the wrong order are swapped.
 *  - name, path and tag take no ranges, so a ".." in their values is text.
 *
 * Canonical text from q_format, one line:
 *   (AND x y ...)  (OR x y ...)  (NOT x)    nested runs of one operator are
 *                                           shown flat, whatever the tree shape
 *   (TERM FIELD OP VALUE)  (TERM FIELD in LOW HIGH)
 * FIELD is text, name, path, type, size, mtime, atime, ctime, uid, gid,
 * mode, nlink, tag, derived-from, generated-by or attr:NAME once resolved, and the field as written
 * before. OP is =, >, >=, <, <= or glob. Strings are always in double quotes
 * (with \" \\ and \xNN for control bytes); sizes, ids, counts and times (ns
 * since the epoch) are decimal, modes octal with a leading 0, types a letter,
 * xattr booleans true/false and xattr numbers bare.
 */
#include "query.h"

#include <errno.h>
#include <grp.h>
#include <limits.h>
#include <math.h>
#include <pwd.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#define Q_MAX_LEN (64 * 1024)
#define Q_MAX_DEPTH 100
#define NS_PER_SEC 1000000000LL
#define ARRAY_LEN(a) (sizeof(a) / sizeof((a)[0]))

/* ---------------------------------------------------------------- errors */

struct q_err {
	char *buf;
	size_t len;
	int *pos;
};

static int vfail(const struct q_err *e, int pos, bool column, const char *tail, const char *fmt, va_list ap)
{
	if (e->pos)
		*e->pos = pos;
	if (!e->buf || !e->len)
		return -1;
	int n = vsnprintf(e->buf, e->len, fmt, ap);
	if (n < 0 || (size_t)n >= e->len)
		return -1;
	if (column)
		snprintf(e->buf + n, e->len - (size_t)n, " at column %d%s", pos + 1, tail ? tail : "");
	return -1;
}

/* Sets "MESSAGE at column N" and returns -1. */
__attribute__((format(printf, 3, 4))) static int fail(const struct q_err *e, int pos, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vfail(e, pos, true, NULL, fmt, ap);
	va_end(ap);
	return -1;
}

/* Sets "MESSAGE at column N TAIL" and returns -1. */
__attribute__((format(printf, 4, 5))) static int fail_tail(const struct q_err *e, int pos, const char *tail,
							   const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vfail(e, pos, true, tail, fmt, ap);
	va_end(ap);
	return -1;
}

/* For errors about the whole query, where a column would mean nothing. */
__attribute__((format(printf, 3, 4))) static int fail_whole(const struct q_err *e, int pos, const char *fmt,
							    ...)
{
	va_list ap;
	va_start(ap, fmt);
	vfail(e, pos, false, NULL, fmt, ap);
	va_end(ap);
	return -1;
}

#define SHOW_MAX 40
#define SHOW_BUF (SHOW_MAX + 4)

/* User text quoted in a message: cut short, and with control bytes replaced,
 * so that the message stays one line. */
static const char *show(char buf[SHOW_BUF], const char *s)
{
	size_t n = strlen(s);
	bool cut = n > SHOW_MAX;
	if (cut) {
		n = SHOW_MAX;
		/* do not leave half a UTF-8 sequence */
		while (n > 0 && ((unsigned char)s[n] & 0xc0) == 0x80)
			n--;
	}
	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)s[i];
		buf[i] = c < 0x20 || c == 0x7f ? '?' : (char)c;
	}
	if (cut)
		memcpy(buf + n, "...", 3), n += 3;
	buf[n] = 0;
	return buf;
}

/* ---------------------------------------------------------------- lexer */

enum tok_kind { T_EOF, T_LPAREN, T_RPAREN, T_MINUS, T_NOT, T_AND, T_OR, T_TERM };

struct token {
	enum tok_kind kind;
	int pos;
	/* T_TERM: owned until a node takes them */
	char *field, *value, *value2;
	enum q_op op;
	bool quoted;
};

struct parser {
	const char *s;
	int i;
	struct token tok;
	enum tok_kind prev; /* the token consumed last; T_EOF before the first */
	int prev_pos;
	int depth;
	struct q_err e;
};

static const char *tok_text(enum tok_kind k)
{
	switch (k) {
	case T_LPAREN:
		return "(";
	case T_RPAREN:
		return ")";
	case T_MINUS:
		return "-";
	case T_NOT:
		return "NOT";
	case T_AND:
		return "AND";
	case T_OR:
		return "OR";
	default:
		return "term";
	}
}

static bool is_space(char c)
{
	return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v';
}

static bool is_field_start(char c)
{
	return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || c == '_';
}

static bool is_field_char(char c)
{
	return is_field_start(c) || (c >= '0' && c <= '9') || c == '.' || c == '-';
}

static bool is_digit(char c)
{
	return c >= '0' && c <= '9';
}

static char *dup_n(const char *s, size_t n)
{
	char *p = malloc(n + 1);
	if (p) {
		memcpy(p, s, n);
		p[n] = 0;
	}
	return p;
}

static void tok_clear(struct token *t)
{
	free(t->field);
	free(t->value);
	free(t->value2);
	memset(t, 0, sizeof *t);
}

/* Reads the quoted string that starts at s[p->i]. */
static int lex_quoted(struct parser *p, char **out)
{
	const char *s = p->s;
	int start = p->i, j;
	size_t n = 0;
	for (j = start + 1; s[j] != '"'; j++, n++) {
		if (!s[j])
			return fail(&p->e, start, "unterminated quote");
		if (s[j] == '\\' && (s[j + 1] == '"' || s[j + 1] == '\\'))
			j++;
	}
	char *v = malloc(n + 1);
	if (!v)
		return fail(&p->e, start, "out of memory");
	n = 0;
	for (int k = start + 1; k < j; k++) {
		if (s[k] == '\\' && (s[k + 1] == '"' || s[k + 1] == '\\'))
			k++;
		v[n++] = s[k];
	}
	v[n] = 0;
	*out = v;
	p->i = j + 1;
	return 0;
}

/* FIELD ":" [cmp] value, with s[start..colon) the field name. */
static int lex_field(struct parser *p, int start, int colon)
{
	const char *s = p->s;
	struct token *t = &p->tok;
	t->field = dup_n(s + start, (size_t)(colon - start));
	if (!t->field)
		return fail(&p->e, start, "out of memory");
	int k = colon + 1;
	if (s[k] == '>' || s[k] == '<') {
		bool eq = s[k + 1] == '=';
		t->op = s[k] == '>' ? (eq ? QOP_GE : QOP_GT) : (eq ? QOP_LE : QOP_LT);
		k += eq ? 2 : 1;
	}
	/* names are capped so that the message stays short */
	int shown = k - start > 60 ? 60 : k - start;
	if (s[k] == '"') {
		p->i = k;
		if (lex_quoted(p, &t->value))
			return -1;
		t->quoted = true;
		/* field:"" is an xattr set to the empty string; nothing is
		 * less or greater than nothing */
		if (!t->value[0] && t->op != QOP_MATCH)
			return fail(&p->e, start, "missing value after '%.*s'", shown, s + start);
		return 0;
	}
	int j = k;
	while (s[j] && !is_space(s[j]) && s[j] != ')')
		j++;
	if (j == k)
		return fail(&p->e, start, "missing value after '%.*s'", shown, s + start);
	p->i = j;
	if (j - k == 2 && s[k] == '.' && s[k + 1] == '.')
		return fail(&p->e, start, "bare '..' after '%.*s': a range needs both ends", shown,
			    s + start);
	int dots = -1;
	for (int m = k; m + 1 < j; m++) {
		if (s[m] == '.' && s[m + 1] == '.') {
			dots = m;
			break;
		}
	}
	if (dots > k && dots + 2 < j) {
		if (t->op != QOP_MATCH)
			return fail(&p->e, start, "'%.*s' cannot be combined with a range", shown, s + start);
		t->op = QOP_RANGE;
		t->value = dup_n(s + k, (size_t)(dots - k));
		t->value2 = dup_n(s + dots + 2, (size_t)(j - dots - 2));
		if (!t->value || !t->value2)
			return fail(&p->e, start, "out of memory");
		return 0;
	}
	t->value = dup_n(s + k, (size_t)(j - k));
	if (!t->value)
		return fail(&p->e, start, "out of memory");
	return 0;
}

/* Reads the next token into p->tok. */
static int lex(struct parser *p)
{
	const char *s = p->s;
	struct token *t = &p->tok;
	tok_clear(t);
	while (is_space(s[p->i]))
		p->i++;
	int i = p->i;
	t->pos = i;
	switch (s[i]) {
	case 0:
		t->kind = T_EOF;
		return 0;
	case '(':
		t->kind = T_LPAREN;
		p->i++;
		return 0;
	case ')':
		t->kind = T_RPAREN;
		p->i++;
		return 0;
	case '-':
		t->kind = T_MINUS;
		p->i++;
		return 0;
	}
	t->kind = T_TERM;
	t->op = QOP_MATCH;
	if (s[i] == '"') {
		if (lex_quoted(p, &t->value))
			return -1;
		t->quoted = true;
		if (!t->value[0])
			return fail(&p->e, i, "empty quoted string");
		return 0;
	}
	int j = i;
	if (is_field_start(s[j])) {
		while (is_field_char(s[j]))
			j++;
		if (s[j] == ':')
			return lex_field(p, i, j);
	}
	j = i;
	while (s[j] && !is_space(s[j]) && s[j] != '(' && s[j] != ')')
		j++;
	p->i = j;
	size_t n = (size_t)(j - i);
	if (n == 3 && !memcmp(s + i, "AND", 3)) {
		t->kind = T_AND;
		return 0;
	}
	if (n == 2 && !memcmp(s + i, "OR", 2)) {
		t->kind = T_OR;
		return 0;
	}
	if (n == 3 && !memcmp(s + i, "NOT", 3)) {
		t->kind = T_NOT;
		return 0;
	}
	if (n == 2 && !memcmp(s + i, "..", 2))
		return fail(&p->e, i, "bare '..': a range needs a field and both ends, e.g. size:1M..10M");
	t->value = dup_n(s + i, n);
	if (!t->value)
		return fail(&p->e, i, "out of memory");
	return 0;
}

static int advance(struct parser *p)
{
	p->prev = p->tok.kind;
	p->prev_pos = p->tok.pos;
	return lex(p);
}

/* ---------------------------------------------------------------- parser */

struct node_list {
	struct q_node **v;
	size_t n, cap;
};

static int list_push(struct parser *p, struct node_list *l, struct q_node *x)
{
	if (l->n == l->cap) {
		size_t cap = l->cap ? l->cap * 2 : 8;
		struct q_node **v = realloc(l->v, cap * sizeof *v);
		if (!v) {
			q_free(x);
			return fail(&p->e, p->tok.pos, "out of memory");
		}
		l->v = v;
		l->cap = cap;
	}
	l->v[l->n++] = x;
	return 0;
}

static void list_free(struct node_list *l)
{
	for (size_t i = 0; i < l->n; i++)
		q_free(l->v[i]);
	free(l->v);
}

static struct q_node *build(enum q_kind kind, struct q_node **v, size_t n, struct q_node **pool, size_t *used)
{
	if (n == 1)
		return v[0];
	struct q_node *x = pool[(*used)++];
	size_t half = n / 2;
	x->kind = kind;
	x->pos = v[0]->pos;
	x->left = build(kind, v, half, pool, used);
	x->right = build(kind, v + half, n - half, pool, used);
	return x;
}

/* Joins the operands of one run of AND or OR into a balanced subtree;
 * consumes the list either way. */
static int join(struct parser *p, enum q_kind kind, struct node_list *l, struct q_node **out)
{
	if (l->n == 1) {
		*out = l->v[0];
		free(l->v);
		return 0;
	}
	size_t need = l->n - 1, got = 0, used = 0;
	struct q_node **pool = malloc(need * sizeof *pool);
	if (pool) {
		for (; got < need; got++) {
			pool[got] = calloc(1, sizeof **pool);
			if (!pool[got])
				break;
		}
	}
	if (!pool || got < need) {
		for (size_t i = 0; i < got; i++)
			free(pool[i]);
		free(pool);
		list_free(l);
		return fail(&p->e, p->tok.pos, "out of memory");
	}
	*out = build(kind, l->v, l->n, pool, &used);
	free(pool);
	free(l->v);
	return 0;
}

/* A primary was due but the current token cannot start one. */
static int missing_operand(struct parser *p)
{
	const struct token *t = &p->tok;
	switch (p->prev) {
	case T_AND:
	case T_OR:
	case T_NOT:
	case T_MINUS:
		return fail(&p->e, p->prev_pos, "missing operand after '%s'", tok_text(p->prev));
	case T_LPAREN:
		if (t->kind == T_RPAREN)
			return fail(&p->e, p->prev_pos, "empty parentheses");
		if (t->kind == T_EOF)
			return fail_tail(&p->e, p->prev_pos, " (no matching ')')", "unbalanced '('");
		break;
	default:
		break;
	}
	if (t->kind == T_EOF)
		return fail_whole(&p->e, 0, "empty query");
	if (t->kind == T_AND || t->kind == T_OR)
		return fail(&p->e, t->pos, "missing operand before '%s'", tok_text(t->kind));
	return fail(&p->e, t->pos, "unexpected '%s'", tok_text(t->kind));
}

static int deeper(struct parser *p, int pos)
{
	if (++p->depth > Q_MAX_DEPTH)
		return fail(&p->e, pos, "query nested more than %d levels deep", Q_MAX_DEPTH);
	return 0;
}

static int parse_or(struct parser *p, struct q_node **out);

static int parse_primary(struct parser *p, struct q_node **out)
{
	struct token *t = &p->tok;
	if (t->kind == T_TERM) {
		struct q_node *n = calloc(1, sizeof *n);
		if (!n)
			return fail(&p->e, t->pos, "out of memory");
		n->kind = Q_TERM;
		n->pos = t->pos;
		n->field = t->field;
		n->value = t->value;
		n->value2 = t->value2;
		n->op = t->op;
		n->quoted = t->quoted;
		t->field = t->value = t->value2 = NULL;
		if (advance(p)) {
			q_free(n);
			return -1;
		}
		*out = n;
		return 0;
	}
	if (t->kind != T_LPAREN)
		return missing_operand(p);
	int open = t->pos;
	if (deeper(p, open) || advance(p))
		return -1;
	struct q_node *x;
	if (parse_or(p, &x))
		return -1;
	/* parse_or stops only at ")" or the end */
	if (p->tok.kind != T_RPAREN) {
		q_free(x);
		return fail_tail(&p->e, open, " (no matching ')')", "unbalanced '('");
	}
	p->depth--;
	if (advance(p)) {
		q_free(x);
		return -1;
	}
	*out = x;
	return 0;
}

static int parse_unary(struct parser *p, struct q_node **out)
{
	if (p->tok.kind != T_MINUS && p->tok.kind != T_NOT)
		return parse_primary(p, out);
	int pos = p->tok.pos;
	if (deeper(p, pos) || advance(p))
		return -1;
	struct q_node *x;
	if (parse_unary(p, &x))
		return -1;
	p->depth--;
	struct q_node *n = calloc(1, sizeof *n);
	if (!n) {
		q_free(x);
		return fail(&p->e, pos, "out of memory");
	}
	n->kind = Q_NOT;
	n->pos = pos;
	n->left = x;
	*out = n;
	return 0;
}

static bool starts_unary(enum tok_kind k)
{
	return k == T_TERM || k == T_LPAREN || k == T_MINUS || k == T_NOT;
}

static int parse_and(struct parser *p, struct q_node **out)
{
	struct node_list l = { 0 };
	struct q_node *x = NULL;
	for (;;) {
		if (parse_unary(p, &x) || list_push(p, &l, x))
			goto fail;
		if (p->tok.kind == T_AND) {
			if (advance(p))
				goto fail;
		} else if (!starts_unary(p->tok.kind)) {
			break;
		}
	}
	return join(p, Q_AND, &l, out);
fail:
	list_free(&l);
	return -1;
}

static int parse_or(struct parser *p, struct q_node **out)
{
	struct node_list l = { 0 };
	struct q_node *x = NULL;
	for (;;) {
		if (parse_and(p, &x) || list_push(p, &l, x))
			goto fail;
		if (p->tok.kind != T_OR)
			break;
		if (advance(p))
			goto fail;
	}
	return join(p, Q_OR, &l, out);
fail:
	list_free(&l);
	return -1;
}

int q_parse(const char *query, struct q_node **out, char *err, size_t errlen, int *err_pos)
{
	struct parser p = { .s = query, .prev = T_EOF, .e = { err, errlen, err_pos } };
	*out = NULL;
	if (err && errlen)
		err[0] = 0;
	if (err_pos)
		*err_pos = 0;
	if (!query)
		return fail_whole(&p.e, 0, "empty query");
	if (strnlen(query, Q_MAX_LEN + 1) > Q_MAX_LEN)
		return fail_whole(&p.e, Q_MAX_LEN, "query longer than %d bytes", Q_MAX_LEN);
	struct q_node *root = NULL;
	if (lex(&p) || parse_or(&p, &root))
		goto fail;
	if (p.tok.kind != T_EOF) {
		q_free(root);
		missing_operand(&p);
		goto fail;
	}
	*out = root;
	return 0;
fail:
	tok_clear(&p.tok);
	return -1;
}

/* ---------------------------------------------------------------- values */

/* Digits only, at most max. */
static bool parse_uint(const char *s, uint64_t max, uint64_t *out)
{
	uint64_t v = 0;
	if (!*s)
		return false;
	for (; *s; s++) {
		if (!is_digit(*s))
			return false;
		unsigned d = (unsigned)(*s - '0');
		if (v > (max - d) / 10)
			return false;
		v = v * 10 + d;
	}
	*out = v;
	return true;
}

/* 123, 10K, 10KB, 10KiB, 1.5 is not accepted: sizes are whole numbers of
 * bytes or of units, as in find -size. */
static bool parse_size(const char *s, int64_t *out)
{
	uint64_t v = 0;
	if (!is_digit(*s))
		return false;
	for (; is_digit(*s); s++) {
		unsigned d = (unsigned)(*s - '0');
		if (v > (UINT64_MAX - d) / 10)
			return false;
		v = v * 10 + d;
	}
	unsigned shift = 0;
	const char *units = "KkMmGgTt", *u = *s ? strchr(units, *s) : NULL;
	if (u) {
		shift = 10 * (unsigned)((u - units) / 2 + 1);
		s++;
	}
	if (shift && (s[0] == 'i' || s[0] == 'I') && (s[1] == 'B' || s[1] == 'b'))
		s += 2;
	else if (*s == 'B' || *s == 'b')
		s++;
	if (*s || v > ((uint64_t)INT64_MAX >> shift))
		return false;
	*out = (int64_t)(v << shift);
	return true;
}

static int64_t days_from_civil(int64_t y, unsigned m, unsigned d)
{
	y -= m <= 2;
	int64_t era = (y >= 0 ? y : y - 399) / 400;
	unsigned yoe = (unsigned)(y - era * 400);
	unsigned doy = (153 * (m > 2 ? m - 3 : m + 9) + 2) / 5 + d - 1;
	unsigned doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
	return era * 146097 + (int64_t)doe - 719468;
}

/* n digits at s, or -1. */
static int digits(const char *s, int n)
{
	int v = 0;
	for (int i = 0; i < n; i++) {
		if (!is_digit(s[i]))
			return -1;
		v = v * 10 + (s[i] - '0');
	}
	return v;
}

/*
 * A time as the span [*lo, *hi] in ns: one instant for a relative time
 * (7d: now minus 7 days), the whole day, minute or second for a date.
 */
static bool parse_time(const char *s, int64_t now, int64_t *lo, int64_t *hi, bool *relative)
{
	size_t nd = strspn(s, "0123456789");
	if (nd > 0 && s[nd] >= 'a' && s[nd] <= 'z' && !s[nd + 1]) {
		static const struct {
			char unit;
			int64_t ns;
		} units[] = {
			{ 's', NS_PER_SEC },         { 'm', 60 * NS_PER_SEC },     { 'h', 3600 * NS_PER_SEC },
			{ 'd', 86400 * NS_PER_SEC }, { 'w', 604800 * NS_PER_SEC },
		};
		char num[24];
		if (nd >= sizeof num)
			return false;
		memcpy(num, s, nd);
		num[nd] = 0;
		for (size_t i = 0; i < ARRAY_LEN(units); i++) {
			if (s[nd] != units[i].unit)
				continue;
			uint64_t v;
			if (!parse_uint(num, (uint64_t)(INT64_MAX / units[i].ns), &v))
				return false;
			int64_t back = (int64_t)v * units[i].ns;
			if (now < INT64_MIN + back)
				return false;
			*lo = *hi = now - back;
			*relative = true;
			return true;
		}
		return false;
	}
	int y = digits(s, 4), mo = -1, d = -1, h = 0, mi = 0, sec = 0;
	int64_t span = 86400;
	if (y < 0 || s[4] != '-' || (mo = digits(s + 5, 2)) < 0 || s[7] != '-' || (d = digits(s + 8, 2)) < 0)
		return false;
	s += 10;
	if (*s == 'T' || *s == 't') {
		if ((h = digits(s + 1, 2)) < 0 || s[3] != ':' || (mi = digits(s + 4, 2)) < 0)
			return false;
		s += 6;
		span = 60;
		if (*s == ':') {
			if ((sec = digits(s + 1, 2)) < 0)
				return false;
			s += 3;
			span = 1;
		}
	}
	if (*s == 'Z' || *s == 'z')
		s++;
	static const unsigned char mdays[] = { 31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31 };
	bool leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
	if (*s || mo < 1 || mo > 12 || d < 1 || d > mdays[mo - 1] || (mo == 2 && d == 29 && !leap) ||
	    h > 23 || mi > 59 || sec > 59)
		return false;
	int64_t t = days_from_civil(y, (unsigned)mo, (unsigned)d) * 86400 + h * 3600 + mi * 60 + sec;
	/* ns since the epoch in int64 reach from 1677 to 2262 */
	if (t <= INT64_MIN / NS_PER_SEC || t + span >= INT64_MAX / NS_PER_SEC)
		return false;
	*lo = t * NS_PER_SEC;
	*hi = (t + span) * NS_PER_SEC - 1;
	*relative = false;
	return true;
}

static bool parse_type(const char *s, int64_t *out)
{
	static const struct {
		const char *names[3];
		int64_t mode;
	} types[] = {
		{ { "f", "file", "regular" }, S_IFREG }, { { "d", "dir", "directory" }, S_IFDIR },
		{ { "l", "symlink", "link" }, S_IFLNK }, { { "p", "fifo", "pipe" }, S_IFIFO },
		{ { "s", "socket", "sock" }, S_IFSOCK }, { { "c", "char", "chr" }, S_IFCHR },
		{ { "b", "block", "blk" }, S_IFBLK },
	};
	for (size_t i = 0; i < ARRAY_LEN(types); i++) {
		for (size_t j = 0; j < 3; j++) {
			if (!strcasecmp(s, types[i].names[j])) {
				*out = types[i].mode;
				return true;
			}
		}
	}
	return false;
}

static char type_letter(int64_t mode)
{
	switch (mode) {
	case S_IFREG:
		return 'f';
	case S_IFDIR:
		return 'd';
	case S_IFLNK:
		return 'l';
	case S_IFIFO:
		return 'p';
	case S_IFSOCK:
		return 's';
	case S_IFCHR:
		return 'c';
	case S_IFBLK:
		return 'b';
	default:
		return '?';
	}
}

static bool parse_mode(const char *s, int64_t *out)
{
	int64_t v = 0;
	size_t n = strlen(s);
	if (n == 0 || n > 5)
		return false;
	for (; *s; s++) {
		if (*s < '0' || *s > '7')
			return false;
		v = v * 8 + (*s - '0');
	}
	if (v > 07777)
		return false;
	*out = v;
	return true;
}

/* 0 found, -ENOENT unknown, another negative errno if the lookup failed. */
static int lookup_id(const char *name, bool group, int64_t *out)
{
	long hint = sysconf(group ? _SC_GETGR_R_SIZE_MAX : _SC_GETPW_R_SIZE_MAX);
	size_t size = hint > 1024 ? (size_t)hint : 1024;
	for (;;) {
		char *buf = malloc(size);
		if (!buf)
			return -ENOMEM;
		int rc;
		bool found;
		if (group) {
			struct group gr, *res = NULL;
			rc = getgrnam_r(name, &gr, buf, size, &res);
			found = res != NULL;
			if (found)
				*out = gr.gr_gid;
		} else {
			struct passwd pw, *res = NULL;
			rc = getpwnam_r(name, &pw, buf, size, &res);
			found = res != NULL;
			if (found)
				*out = pw.pw_uid;
		}
		free(buf);
		if (found)
			return 0;
		if (rc == ERANGE && size < (1u << 20)) {
			size *= 2;
			continue;
		}
		/* the documented "not found" codes vary between systems */
		if (rc == 0 || rc == ENOENT || rc == ESRCH || rc == EBADF || rc == EPERM)
			return -ENOENT;
		return -rc;
	}
}

/* Folds the path in place, which only ever shortens it. */
static void normalize_path(char *s)
{
	size_t out = 1;
	const char *r = s + 1;
	while (*r) {
		while (*r == '/')
			r++;
		if (!*r)
			break;
		const char *e = r;
		while (*e && *e != '/')
			e++;
		size_t n = (size_t)(e - r);
		if (n == 2 && r[0] == '.' && r[1] == '.') {
			while (out > 1 && s[out - 1] != '/')
				out--;
			if (out > 1)
				out--;
		} else if (!(n == 1 && r[0] == '.')) {
			if (out > 1)
				s[out++] = '/';
			memmove(s + out, r, n);
			out += n;
		}
		r = e;
	}
	s[out] = 0;
}

/* "true"/"false", a finite decimal number, else a string. strtod follows
 * LC_NUMERIC; metafs never changes the locale from "C". */
static enum q_vtype attr_value(const char *s, bool quoted, double *real, int64_t *num)
{
	*real = 0;
	*num = 0;
	if (quoted)
		return QV_STRING;
	if (!strcmp(s, "true") || !strcmp(s, "false")) {
		*num = s[0] == 't';
		*real = (double)*num;
		return QV_BOOL;
	}
	/* strtod also reads hex, inf, nan and leading blanks, none of which is
	 * a decimal number */
	if (!(is_digit(s[0]) || s[0] == '-' || s[0] == '+' || s[0] == '.') || strpbrk(s, "xXnN"))
		return QV_STRING;
	char *end;
	double v = strtod(s, &end);
	if (*end || end == s || !isfinite(v))
		return QV_STRING;
	*real = v;
	if (v >= -0x1p63 && v < 0x1p63 && (double)(int64_t)v == v)
		*num = (int64_t)v;
	return QV_NUMBER;
}

/* ---------------------------------------------------------------- resolver */

enum vkind { V_TEXT, V_NAME, V_PATH, V_TYPE, V_SIZE, V_TIME, V_USER, V_GROUP, V_ID, V_MODE, V_COUNT };

static const struct builtin {
	const char *name;
	enum q_field f;
	enum vkind v;
} builtins[] = {
	{ "name", QF_NAME, V_NAME },
	{ "path", QF_PATH, V_PATH },
	{ "type", QF_TYPE, V_TYPE },
	{ "size", QF_SIZE, V_SIZE },
	{ "mtime", QF_MTIME, V_TIME },
	{ "atime", QF_ATIME, V_TIME },
	{ "ctime", QF_CTIME, V_TIME },
	{ "user", QF_UID, V_USER },
	{ "group", QF_GID, V_GROUP },
	{ "uid", QF_UID, V_ID },
	{ "gid", QF_GID, V_ID },
	{ "mode", QF_MODE, V_MODE },
	{ "nlink", QF_NLINK, V_COUNT },
	{ "tag", QF_TAG, V_TEXT },
	{ "derived-from", QF_DERIVED, V_PATH },
	{ "generated-by", QF_GENERATED, V_TEXT },
};

struct resolver {
	int64_t now;
	bool (*has_attr)(void *arg, const char *name);
	void *arg;
	struct q_err e;
};

static const char *op_text(enum q_op op)
{
	switch (op) {
	case QOP_GT:
		return ">";
	case QOP_GE:
		return ">=";
	case QOP_LT:
		return "<";
	case QOP_LE:
		return "<=";
	case QOP_RANGE:
		return "..";
	default:
		return "=";
	}
}

static void order(int64_t *a, int64_t *b)
{
	if (*a > *b) {
		int64_t t = *a;
		*a = *b;
		*b = t;
	}
}

/* One value of a built-in field whose values are numbers. */
static int number_value(struct resolver *r, const struct q_node *n, const struct builtin *b, const char *s,
			int64_t *out)
{
	char shown[SHOW_BUF];
	uint64_t u;
	switch (b->v) {
	case V_SIZE:
		if (!parse_size(s, out))
			return fail(&r->e, n->pos, "bad size '%s'", show(shown, s));
		return 0;
	case V_TYPE:
		if (!parse_type(s, out))
			return fail_tail(&r->e, n->pos, " (use f, d, l, p, s, c or b)", "bad type '%s'",
					 show(shown, s));
		return 0;
	case V_MODE:
		if (!parse_mode(s, out))
			return fail_tail(&r->e, n->pos, " (use octal, e.g. 644)", "bad mode '%s'",
					 show(shown, s));
		return 0;
	case V_USER:
	case V_GROUP: {
		const char *what = b->v == V_GROUP ? "group" : "user";
		if (is_digit(s[0])) {
			if (!parse_uint(s, UINT32_MAX, &u))
				return fail(&r->e, n->pos, "bad %s id '%s'", what, show(shown, s));
			*out = (int64_t)u;
			return 0;
		}
		int rc = lookup_id(s, b->v == V_GROUP, out);
		if (rc == -ENOENT)
			return fail(&r->e, n->pos, "unknown %s '%s'", what, show(shown, s));
		if (rc)
			return fail_tail(&r->e, n->pos,
					 rc == -ENOMEM ? " (out of memory)" : " (the lookup failed)",
					 "cannot look up %s '%s'", what, show(shown, s));
		return 0;
	}
	default:
		if (!parse_uint(s, UINT32_MAX, &u))
			return fail(&r->e, n->pos, "bad number '%s' for '%s'", show(shown, s), b->name);
		*out = (int64_t)u;
		return 0;
	}
}

static int resolve_time(struct resolver *r, struct q_node *n)
{
	char shown[SHOW_BUF];
	int64_t lo, hi, lo2, hi2;
	bool rel, rel2;
	static const char *const hint = " (use e.g. 7d, 12h, 30m, 2w, 2024-01-01 or 2024-01-01T12:00)";
	if (!parse_time(n->value, r->now, &lo, &hi, &rel))
		return fail_tail(&r->e, n->pos, hint, "bad time '%s'", show(shown, n->value));
	if (n->op == QOP_RANGE) {
		if (!parse_time(n->value2, r->now, &lo2, &hi2, &rel2))
			return fail_tail(&r->e, n->pos, hint, "bad time '%s'", show(shown, n->value2));
		n->num = lo < lo2 ? lo : lo2;
		n->num2 = hi > hi2 ? hi : hi2;
		return 0;
	}
	if (rel) {
		/* "<7d" is less than 7 days ago: later than that instant */
		static const enum q_op flip[] = {
			[QOP_MATCH] = QOP_GT, [QOP_LT] = QOP_GT, [QOP_LE] = QOP_GE,
			[QOP_GT] = QOP_LT,    [QOP_GE] = QOP_LE,
		};
		n->op = flip[n->op];
		n->num = lo;
		return 0;
	}
	switch (n->op) {
	case QOP_MATCH:
		n->op = QOP_RANGE;
		n->num = lo;
		n->num2 = hi;
		break;
	case QOP_LT:
	case QOP_GE:
		n->num = lo;
		break;
	default:
		n->num = hi;
		break;
	}
	return 0;
}

static int resolve_attr(struct resolver *r, struct q_node *n)
{
	char shown[SHOW_BUF], shown2[SHOW_BUF];
	const char *name = n->field;
	if (!strncmp(name, "user.", 5))
		name += 5;
	if (!*name || !r->has_attr || !r->has_attr(r->arg, name))
		return fail_tail(&r->e, n->pos,
				 " (not a built-in field and no file in the index has that xattr)",
				 "unknown field '%s'", show(shown, n->field));
	n->attr = strdup(name);
	if (!n->attr)
		return fail(&r->e, n->pos, "out of memory");
	n->f = QF_ATTR;
	n->vtype = attr_value(n->value, n->quoted, &n->real, &n->num);
	if (n->op == QOP_MATCH)
		return 0;
	const char *bad = n->vtype != QV_NUMBER ? n->value : NULL;
	if (!bad && n->op == QOP_RANGE && attr_value(n->value2, false, &n->real2, &n->num2) != QV_NUMBER)
		bad = n->value2;
	if (bad)
		return fail(&r->e, n->pos, "'%s' is not a number, and field '%s' is compared with '%s'",
			    show(shown, bad), show(shown2, n->field), op_text(n->op));
	if (n->op == QOP_RANGE && n->real > n->real2) {
		double t = n->real;
		n->real = n->real2;
		n->real2 = t;
		int64_t u = n->num;
		n->num = n->num2;
		n->num2 = u;
	}
	return 0;
}

/* A string field cannot take a range, so "a..b" there was meant as written,
 * as in `name:v1..2.tar` or `path:/a/../b`. The lexer split an unquoted
 * token at its first "..", so joining the ends back restores it exactly. */
static int rejoin(struct q_node *n)
{
	size_t a = strlen(n->value), b = strlen(n->value2);
	char *v = malloc(a + 2 + b + 1);
	if (!v)
		return -1;
	memcpy(v, n->value, a);
	memcpy(v + a, "..", 2);
	memcpy(v + a + 2, n->value2, b + 1);
	free(n->value);
	free(n->value2);
	n->value = v;
	n->value2 = NULL;
	n->op = QOP_MATCH;
	return 0;
}

static int resolve_term(struct resolver *r, struct q_node *n)
{
	char shown[SHOW_BUF];
	free(n->attr);
	n->attr = NULL;
	n->f = QF_TEXT;
	n->vtype = QV_STRING;
	n->num = n->num2 = 0;
	n->real = n->real2 = 0;
	n->glob = false;
	if (!n->value || (n->op == QOP_RANGE && !n->value2) || n->op > QOP_RANGE)
		return fail(&r->e, n->pos, "malformed term");
	if (!n->field)
		return n->op == QOP_MATCH ? 0 : fail(&r->e, n->pos, "malformed term");

	const struct builtin *b = NULL;
	for (size_t i = 0; i < ARRAY_LEN(builtins); i++) {
		if (!strcmp(n->field, builtins[i].name)) {
			b = &builtins[i];
			break;
		}
	}
	if (!b)
		return resolve_attr(r, n);
	if (!n->value[0])
		return fail_tail(&r->e, n->pos, " (only an xattr can be matched with \"\")",
				 "field '%s' needs a value", b->name);

	bool ordered = b->v == V_SIZE || b->v == V_TIME || b->v == V_ID || b->v == V_COUNT;
	bool literal = b->v == V_TEXT || b->v == V_NAME || b->v == V_PATH;
	if (n->op == QOP_RANGE && literal && rejoin(n))
		return fail(&r->e, n->pos, "out of memory");
	if (n->op != QOP_MATCH && !ordered) {
		if (n->op == QOP_RANGE)
			return fail(&r->e, n->pos, "field '%s' cannot take a range", b->name);
		return fail(&r->e, n->pos, "field '%s' cannot be compared with '%s'", b->name,
			    op_text(n->op));
	}
	switch (b->v) {
	case V_TEXT:
		break;
	case V_NAME:
		if (strchr(n->value, '/'))
			return fail_tail(&r->e, n->pos, " (use path: for paths)", "name '%s' contains '/'",
					 show(shown, n->value));
		n->glob = strpbrk(n->value, "*?") != NULL;
		break;
	case V_PATH:
		if (n->value[0] != '/')
			return fail(&r->e, n->pos, "path '%s' is not absolute", show(shown, n->value));
		normalize_path(n->value);
		break;
	case V_TIME:
		if (resolve_time(r, n))
			return -1;
		n->vtype = QV_NUMBER;
		break;
	default:
		if (number_value(r, n, b, n->value, &n->num))
			return -1;
		if (n->op == QOP_RANGE) {
			if (number_value(r, n, b, n->value2, &n->num2))
				return -1;
			order(&n->num, &n->num2);
		}
		n->vtype = QV_NUMBER;
		break;
	}
	n->f = b->f;
	return 0;
}

static int resolve(struct resolver *r, struct q_node *n)
{
	if (!n)
		return fail_whole(&r->e, 0, "malformed query tree");
	switch (n->kind) {
	case Q_AND:
	case Q_OR:
		if (resolve(r, n->left))
			return -1;
		return resolve(r, n->right);
	case Q_NOT:
		return resolve(r, n->left);
	case Q_TERM:
		return resolve_term(r, n);
	}
	return fail_whole(&r->e, n->pos, "malformed query tree");
}

int q_resolve(struct q_node *n, int64_t now_ns, bool (*has_attr)(void *arg, const char *name), void *arg,
	      char *err, size_t errlen, int *err_pos)
{
	struct resolver r = { now_ns, has_attr, arg, { err, errlen, err_pos } };
	if (err && errlen)
		err[0] = 0;
	if (err_pos)
		*err_pos = 0;
	return resolve(&r, n);
}

/* Iterative, by rotating left children up, so that freeing needs no stack
 * whatever the shape of the tree. */
void q_free(struct q_node *n)
{
	while (n) {
		struct q_node *l = n->left;
		if (l) {
			n->left = l->right;
			l->right = n;
			n = l;
			continue;
		}
		struct q_node *next = n->right;
		free(n->field);
		free(n->value);
		free(n->value2);
		free(n->attr);
		free(n->inos);
		free(n);
		n = next;
	}
}

/* ---------------------------------------------------------------- format */

struct out {
	char *buf;
	size_t len, n;
};

static void put_n(struct out *o, const char *s, size_t k)
{
	if (o->n < o->len) {
		size_t room = o->len - o->n;
		memcpy(o->buf + o->n, s, k < room ? k : room);
	}
	o->n += k;
}

static void put(struct out *o, const char *s)
{
	put_n(o, s, strlen(s));
}

__attribute__((format(printf, 2, 3))) static void putf(struct out *o, const char *fmt, ...)
{
	char tmp[64];
	va_list ap;
	va_start(ap, fmt);
	int k = vsnprintf(tmp, sizeof tmp, fmt, ap);
	va_end(ap);
	if (k > 0)
		put_n(o, tmp, (size_t)k < sizeof tmp ? (size_t)k : sizeof tmp - 1);
}

static void put_str(struct out *o, const char *s)
{
	put(o, " \"");
	for (const char *p = s ? s : ""; *p; p++) {
		unsigned char c = (unsigned char)*p;
		if (c == '"' || c == '\\')
			putf(o, "\\%c", c);
		else if (c < 0x20 || c == 0x7f)
			putf(o, "\\x%02x", c);
		else
			put_n(o, p, 1);
	}
	put(o, "\"");
}

/* The shortest form that reads back as the same double. */
static void put_real(struct out *o, double v)
{
	char tmp[40];
	snprintf(tmp, sizeof tmp, "%.15g", v);
	if (strtod(tmp, NULL) != v)
		snprintf(tmp, sizeof tmp, "%.17g", v);
	put(o, " ");
	put(o, tmp);
}

static const char *const field_names[] = {
	[QF_TEXT] = "text",   [QF_NAME] = "name",   [QF_PATH] = "path",   [QF_TYPE] = "type",
	[QF_SIZE] = "size",   [QF_MTIME] = "mtime", [QF_ATIME] = "atime", [QF_CTIME] = "ctime",
	[QF_UID] = "uid",     [QF_GID] = "gid",     [QF_MODE] = "mode",   [QF_NLINK] = "nlink",
	[QF_TAG] = "tag",     [QF_ATTR] = "attr",
	[QF_DERIVED] = "derived-from", [QF_GENERATED] = "generated-by",
};

static void format_term(struct out *o, const struct q_node *n)
{
	/* a field term is still QF_TEXT only until it is resolved */
	bool resolved = !n->field || n->f != QF_TEXT;
	bool range = n->op == QOP_RANGE;
	bool known = (unsigned)n->f < ARRAY_LEN(field_names);
	put(o, "(TERM ");
	if (!resolved) {
		put(o, n->field);
	} else if (n->f == QF_ATTR) {
		put(o, "attr:");
		put(o, n->attr ? n->attr : n->field ? n->field : "");
	} else {
		put(o, known ? field_names[n->f] : "?");
	}
	put(o, " ");
	put(o, range ? "in" : n->op == QOP_MATCH && n->glob ? "glob" : op_text(n->op));

	if (!resolved) {
		put_str(o, n->value);
		if (range)
			put_str(o, n->value2);
	} else {
		switch (n->f) {
		case QF_TYPE:
			putf(o, " %c", type_letter(n->num));
			break;
		case QF_SIZE:
		case QF_MTIME:
		case QF_ATIME:
		case QF_CTIME:
		case QF_UID:
		case QF_GID:
		case QF_NLINK:
			putf(o, " %lld", (long long)n->num);
			if (range)
				putf(o, " %lld", (long long)n->num2);
			break;
		case QF_MODE:
			putf(o, " 0%llo", (unsigned long long)n->num);
			break;
		case QF_ATTR:
			if (n->vtype == QV_BOOL) {
				put(o, n->num ? " true" : " false");
			} else if (n->vtype == QV_NUMBER) {
				put_real(o, n->real);
				if (range)
					put_real(o, n->real2);
			} else {
				put_str(o, n->value);
			}
			break;
		default:
			put_str(o, n->value);
			if (range)
				put_str(o, n->value2);
			break;
		}
	}
	put(o, ")");
}

static void format_node(struct out *o, const struct q_node *n);

static void format_run(struct out *o, const struct q_node *n, enum q_kind kind)
{
	if (n && n->kind == kind) {
		format_run(o, n->left, kind);
		format_run(o, n->right, kind);
	} else {
		put(o, " ");
		format_node(o, n);
	}
}

static void format_node(struct out *o, const struct q_node *n)
{
	if (!n) {
		put(o, "()");
		return;
	}
	switch (n->kind) {
	case Q_AND:
	case Q_OR:
		put(o, n->kind == Q_AND ? "(AND" : "(OR");
		format_run(o, n->left, n->kind);
		format_run(o, n->right, n->kind);
		put(o, ")");
		break;
	case Q_NOT:
		put(o, "(NOT ");
		format_node(o, n->left);
		put(o, ")");
		break;
	case Q_TERM:
		format_term(o, n);
		break;
	default:
		put(o, "(?)");
		break;
	}
}

/* Returns the length of the whole text, as snprintf does: a result of len or
 * more means buf holds a truncated copy. */
int q_format(const struct q_node *n, char *buf, size_t len)
{
	struct out o = { buf, len, 0 };
	format_node(&o, n);
	if (buf && len)
		buf[o.n < len ? o.n : len - 1] = 0;
	return o.n > INT_MAX ? INT_MAX : (int)o.n;
}

bool q_number_text(const char *s, double *d)
{
	char *end, txt[64];
	errno = 0;
	*d = strtod(s, &end);
	if (!*s || *end || errno || !isfinite(*d))
		return false;
	snprintf(txt, sizeof txt, "%.17g", *d);
	return strcmp(txt, s) == 0;
}
