/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The query language of `metafs find`: parsed into a tree, then resolved
 * into typed terms that every search backend compiles the same way.
 *
 *   query    := or
 *   or       := and ( "OR" and )*
 *   and      := unary ( [ "AND" ] unary )*        juxtaposition means AND
 *   unary    := ( "-" | "NOT" ) unary | primary
 *   primary  := "(" or ")" | term
 *   term     := WORD | "quoted words" | FIELD ":" value
 *   value    := [ ">" | ">=" | "<" | "<=" ] VALUE | VALUE ".." VALUE
 *             | "quoted value" | VALUE
 *
 * FIELD is a built-in field (name, path, type, size, mtime, atime, ctime,
 * user, group, uid, gid, mode, nlink, tag, derived-from, generated-by) or
 * the name of an xattr, with
 * dotted names reaching into JSON objects: `annotations.bicycles:>3` reads
 * the xattr user.annotations. AND/OR/NOT are words only in capitals.
 */
#ifndef METAFS_QUERY_H
#define METAFS_QUERY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

enum q_kind { Q_AND, Q_OR, Q_NOT, Q_TERM };

enum q_op {
	QOP_MATCH, /* a word, or field:value without a comparison */
	QOP_GT, QOP_GE, QOP_LT, QOP_LE,
	QOP_RANGE, /* value..value2, both ends included */
};

enum q_field {
	QF_TEXT, /* a free word: matches names, paths and xattr text */
	QF_NAME, /* file name: word match, or glob with * and ? */
	QF_PATH, /* subtree: the path and everything below it */
	QF_TYPE, /* f d l p s c b */
	QF_SIZE, /* bytes; suffixes K M G T are powers of 1024 */
	QF_MTIME, QF_ATIME, QF_CTIME, /* ns since the epoch */
	QF_UID, QF_GID, /* user:NAME and group:NAME resolve to these */
	QF_MODE, /* permission bits, octal */
	QF_NLINK,
	QF_TAG, /* user.xdg.tags entries and user.tag.* names */
	QF_ATTR, /* an xattr or a field inside a JSON xattr value */
	QF_DERIVED, /* derived-from:PATH, the current version made from PATH, however far up */
	QF_GENERATED, /* generated-by:WORD, written by a command with that word */
};

/* What a value turned out to be, for QF_ATTR (others are fixed by field). */
enum q_vtype { QV_STRING, QV_NUMBER, QV_BOOL };

struct q_node {
	enum q_kind kind;
	struct q_node *left, *right; /* AND/OR: both; NOT: left */
	int pos; /* byte offset in the query, for messages */

	/* Q_TERM, as written */
	char *field; /* NULL for a free word */
	enum q_op op;
	char *value, *value2;
	bool quoted;

	/* Q_TERM, resolved by q_resolve */
	enum q_field f;
	char *attr; /* QF_ATTR: the field name with "user." removed, e.g. "annotations.bicycles" */
	enum q_vtype vtype;
	int64_t num, num2; /* numbers, sizes, times (ns), ids, modes; QOP_RANGE uses both */
	double real, real2; /* QF_ATTR numbers */
	bool glob; /* QF_NAME with * or ? */
	/* QF_DERIVED, for a backend that looks the files up before the query
	 * (its descendants callback): the files found, in inode order */
	uint64_t *inos;
	size_t ninos;
};

/* Parses; on error returns -1, fills err with a one-line message and
 * *err_pos with the byte offset of the offending token. */
int q_parse(const char *query, struct q_node **out, char *err, size_t errlen, int *err_pos);

/*
 * Resolves fields and values: built-in fields get their typed value (size
 * units, relative times such as 7d/12h/30m/2w measured back from now_ns, or
 * dates as YYYY-MM-DD[THH:MM[:SS]] UTC, user and group names looked up),
 * other fields become QF_ATTR when has_attr(arg, name) says the index knows
 * that xattr or JSON field; otherwise it is an error ("unknown field").
 * For times, `mtime:<7d` means "changed less than 7 days ago", i.e. it is
 * turned into QOP_GT of now-7d; absolute dates compare as written.
 */
int q_resolve(struct q_node *n, int64_t now_ns, bool (*has_attr)(void *arg, const char *name), void *arg,
	      char *err, size_t errlen, int *err_pos);

void q_free(struct q_node *n);

/* Whether s is the "%.17g" text of a finite number (*d), the text a quoted
 * value must be to find an xattr field's number: "4" finds 4, "4.0" not. */
bool q_number_text(const char *s, double *d);

/* Renders a node as canonical text (for tests and --explain). */
int q_format(const struct q_node *n, char *buf, size_t len);

#endif
