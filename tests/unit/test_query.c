/* SPDX-License-Identifier: Apache-2.0 */
/* The query language: precedence, quoting, every built-in field's values,
 * xattr fields, every parse and resolve error with its position, and the
 * limits that keep hostile queries from crashing or recursing deeply. */
#include "harness.h"
#include "query.h"

#include <stdint.h>
#include <sys/stat.h>

/* 2023-11-14T22:13:20Z, so that relative times have known values */
#define NOW (1700000000LL * 1000000000LL)
#define SEC 1000000000LL
#define DAY (86400 * SEC)
#define JAN1_2024 (1704067200LL * SEC)

static const char *const known_attrs[] = {
	"annotations.bicycles", "rating", "done", "color", "x.y-z", "name"
};

/* Answers from a fixed list, and remembers the name asked last. */
static bool has_attr(void *arg, const char *name)
{
	if (arg)
		snprintf(arg, 128, "%s", name);
	for (size_t i = 0; i < sizeof known_attrs / sizeof *known_attrs; i++)
		if (!strcmp(name, known_attrs[i]))
			return true;
	return false;
}

static char fmt_buf[1 << 16];

/* A query as it can be shown on one TAP line. */
static const char *vis(const char *q, char *buf, size_t len)
{
	size_t i = 0;
	for (; q[i] && i + 1 < len; i++)
		buf[i] = (unsigned char)q[i] < 0x20 ? '?' : q[i];
	buf[i] = 0;
	return buf;
}

/* The canonical text of a parsed and resolved query, or its error. */
static const char *fmt(const char *q)
{
	char err[256];
	int pos = -1;
	struct q_node *n;
	if (q_parse(q, &n, err, sizeof err, &pos)) {
		snprintf(fmt_buf, sizeof fmt_buf, "parse error @%d: %s", pos, err);
		return fmt_buf;
	}
	if (q_resolve(n, NOW, has_attr, NULL, err, sizeof err, &pos)) {
		snprintf(fmt_buf, sizeof fmt_buf, "resolve error @%d: %s", pos, err);
		q_free(n);
		return fmt_buf;
	}
	q_format(n, fmt_buf, sizeof fmt_buf);
	q_free(n);
	return fmt_buf;
}

#define CHECK_FMT(q, want)                                                                                   \
	do {                                                                                                 \
		char vis_[80];                                                                               \
		const char *got_ = fmt(q);                                                                   \
		CHECK(!strcmp(got_, want), "%s -> %s%s%s", vis(q, vis_, sizeof vis_), got_,                  \
		      strcmp(got_, want) ? " (want " : "", strcmp(got_, want) ? want ")" : "");              \
	} while (0)

/* Parses and resolves a one-term query; NULL on any error. */
static struct q_node *term(const char *q)
{
	struct q_node *n;
	if (q_parse(q, &n, NULL, 0, NULL))
		return NULL;
	if (q_resolve(n, NOW, has_attr, NULL, NULL, 0, NULL) || n->kind != Q_TERM) {
		q_free(n);
		return NULL;
	}
	return n;
}

#define CHECK_NUM(q, field, op_, n1, n2)                                                                     \
	do {                                                                                                 \
		struct q_node *t_ = term(q);                                                                 \
		CHECK(t_ && t_->f == (field) && t_->op == (op_) && t_->num == (n1) &&                        \
			      (t_->op != QOP_RANGE || t_->num2 == (n2)),                                     \
		      "%s -> f %d op %d num %lld num2 %lld", q, t_ ? (int)t_->f : -1, t_ ? (int)t_->op : -1, \
		      t_ ? (long long)t_->num : 0, t_ ? (long long)t_->num2 : 0);                            \
		q_free(t_);                                                                                  \
	} while (0)

/* The query must fail, in q_parse or q_resolve, at byte pos with a message
 * containing msg, on one line. */
static void check_err(const char *q, int want_pos, const char *msg, int line)
{
	char err[256] = "";
	int pos = -1;
	struct q_node *n = NULL;
	int rc = q_parse(q, &n, err, sizeof err, &pos);
	if (rc == 0) {
		rc = q_resolve(n, NOW, has_attr, NULL, err, sizeof err, &pos);
		q_free(n);
	} else {
		CHECK(n == NULL, "line %d: no tree is returned with a parse error", line);
	}
	bool ok = rc == -1 && pos == want_pos && strstr(err, msg) && !strchr(err, '\n');
	char shown[64];
	CHECK(ok, "line %d: '%s' fails at %d with \"%s\" (got rc %d at %d: \"%s\")", line,
	      vis(q, shown, sizeof shown), want_pos, msg, rc, pos, err);
}

#define CHECK_ERR(q, pos, msg) check_err(q, pos, msg, __LINE__)

static int depth(const struct q_node *n)
{
	if (!n)
		return 0;
	int l = depth(n->left), r = depth(n->right);
	return 1 + (l > r ? l : r);
}

static void test_precedence(void)
{
	CHECK_FMT("a b OR c", "(OR (AND (TERM text = \"a\") (TERM text = \"b\")) (TERM text = \"c\"))");
	CHECK_FMT("a OR b c", "(OR (TERM text = \"a\") (AND (TERM text = \"b\") (TERM text = \"c\")))");
	CHECK_FMT("a AND b OR c AND d", "(OR (AND (TERM text = \"a\") (TERM text = \"b\")) (AND (TERM text = "
					"\"c\") (TERM text = \"d\")))");
	CHECK_FMT("a b c d e",
		  "(AND (TERM text = \"a\") (TERM text = \"b\") (TERM text = \"c\") (TERM text = \"d\") "
		  "(TERM text = \"e\"))");
	CHECK_FMT("a OR b OR c", "(OR (TERM text = \"a\") (TERM text = \"b\") (TERM text = \"c\"))");
	CHECK_FMT("a (b OR c)", "(AND (TERM text = \"a\") (OR (TERM text = \"b\") (TERM text = \"c\")))");
	CHECK_FMT("(a b) OR c", "(OR (AND (TERM text = \"a\") (TERM text = \"b\")) (TERM text = \"c\"))");
	CHECK_FMT("((a))", "(TERM text = \"a\")");
	CHECK_FMT("a AND (b AND c)", "(AND (TERM text = \"a\") (TERM text = \"b\") (TERM text = \"c\"))");
	CHECK_FMT("(a)(b)", "(AND (TERM text = \"a\") (TERM text = \"b\"))");
	CHECK_FMT("-a b", "(AND (NOT (TERM text = \"a\")) (TERM text = \"b\"))");
	CHECK_FMT("a -b", "(AND (TERM text = \"a\") (NOT (TERM text = \"b\")))");
	CHECK_FMT("NOT a OR b", "(OR (NOT (TERM text = \"a\")) (TERM text = \"b\"))");
	CHECK_FMT("NOT (a OR b)", "(NOT (OR (TERM text = \"a\") (TERM text = \"b\")))");
	CHECK_FMT("-(a)", "(NOT (TERM text = \"a\"))");
	CHECK_FMT("- -a", "(NOT (NOT (TERM text = \"a\")))");
	CHECK_FMT("NOT -a", "(NOT (NOT (TERM text = \"a\")))");
	CHECK_FMT("a-b", "(TERM text = \"a-b\")");
	CHECK_FMT("a and b or not c",
		  "(AND (TERM text = \"a\") (TERM text = \"and\") (TERM text = \"b\") (TERM text = \"or\") "
		  "(TERM text = \"not\") (TERM text = \"c\"))");
	CHECK_FMT("  a\t\nb  ", "(AND (TERM text = \"a\") (TERM text = \"b\"))");
	CHECK_FMT("-size:>1M", "(NOT (TERM size > 1048576))");

	/* long runs are balanced, so no backend walks a deep tree */
	char q[4000] = "";
	for (int i = 0; i < 1000; i++)
		strcat(q, i ? " x" : "x");
	struct q_node *n;
	CHECK(q_parse(q, &n, NULL, 0, NULL) == 0 && depth(n) <= 11, "1000 ANDed words make a tree %d deep",
	      depth(n));
	q_free(n);
}

static void test_quotes(void)
{
	CHECK_FMT("\"a OR b\"", "(TERM text = \"a OR b\")");
	CHECK_FMT("\"AND\"", "(TERM text = \"AND\")");
	CHECK_FMT("\"(x)\" \"-y\"", "(AND (TERM text = \"(x)\") (TERM text = \"-y\"))");
	CHECK_FMT("\"say \\\"hi\\\" \\\\o/\"", "(TERM text = \"say \\\"hi\\\" \\\\o/\")");
	struct q_node *n = term("\"a\\nb\\\\c\"");
	CHECK(n && !strcmp(n->value, "a\\nb\\c") && n->quoted,
	      "a backslash before another letter is kept: %s", n ? n->value : "(error)");
	q_free(n);
	n = term("word");
	CHECK(n && !n->quoted && !n->field && n->f == QF_TEXT, "a bare word is unquoted free text");
	q_free(n);
	CHECK_FMT("name:\"my file.txt\"", "(TERM name = \"my file.txt\")");
	CHECK_FMT("tag:\"a b\"x", "(AND (TERM tag = \"a b\") (TERM text = \"x\"))");
	CHECK_FMT("\"x\x01y\"", "(TERM text = \"x\\x01y\")");
	CHECK_FMT("a:b:c",
		  "resolve error @0: unknown field 'a' at column 1 (not a built-in field and no file in "
		  "the index has that xattr)");
	CHECK_FMT("\"a:b\"", "(TERM text = \"a:b\")");
	CHECK_FMT(":x", "(TERM text = \":x\")");
	CHECK_ERR("name:foo(1)x", 10, "unexpected ')' at column 11");
}

static void test_size(void)
{
	CHECK_NUM("size:10", QF_SIZE, QOP_MATCH, 10, 0);
	CHECK_NUM("size:0", QF_SIZE, QOP_MATCH, 0, 0);
	CHECK_NUM("size:1K", QF_SIZE, QOP_MATCH, 1024, 0);
	CHECK_NUM("size:2k", QF_SIZE, QOP_MATCH, 2048, 0);
	CHECK_NUM("size:2KB", QF_SIZE, QOP_MATCH, 2048, 0);
	CHECK_NUM("size:2KiB", QF_SIZE, QOP_MATCH, 2048, 0);
	CHECK_NUM("size:3m", QF_SIZE, QOP_MATCH, 3 << 20, 0);
	CHECK_NUM("size:3MiB", QF_SIZE, QOP_MATCH, 3 << 20, 0);
	CHECK_NUM("size:5G", QF_SIZE, QOP_MATCH, 5LL << 30, 0);
	CHECK_NUM("size:7T", QF_SIZE, QOP_MATCH, 7LL << 40, 0);
	CHECK_NUM("size:100B", QF_SIZE, QOP_MATCH, 100, 0);
	CHECK_NUM("size:>10M", QF_SIZE, QOP_GT, 10 << 20, 0);
	CHECK_NUM("size:>=10M", QF_SIZE, QOP_GE, 10 << 20, 0);
	CHECK_NUM("size:<1K", QF_SIZE, QOP_LT, 1024, 0);
	CHECK_NUM("size:<=1K", QF_SIZE, QOP_LE, 1024, 0);
	CHECK_NUM("size:1K..2M", QF_SIZE, QOP_RANGE, 1024, 2 << 20);
	CHECK_NUM("size:2M..1K", QF_SIZE, QOP_RANGE, 1024, 2 << 20);
	CHECK_NUM("size:8388607T", QF_SIZE, QOP_MATCH, 8388607LL << 40, 0);
	CHECK_FMT("size:>10M -tag:x", "(AND (TERM size > 10485760) (NOT (TERM tag = \"x\")))");
	CHECK_FMT("size:1K..2K", "(TERM size in 1024 2048)");
	CHECK_ERR("size:10X", 0, "bad size '10X' at column 1");
	CHECK_ERR("a size:1.5M", 2, "bad size '1.5M' at column 3");
	CHECK_ERR("size:-1", 0, "bad size '-1'");
	CHECK_ERR("size:KB", 0, "bad size 'KB'");
	CHECK_ERR("size:1iB", 0, "bad size '1iB'");
	CHECK_ERR("size:10KBB", 0, "bad size");
	CHECK_ERR("size:8388608T", 0, "bad size");
	CHECK_ERR("size:99999999999999999999", 0, "bad size");
	CHECK_ERR("size:1K..x", 0, "bad size 'x'");
	CHECK_ERR("size:...5", 0, "bad size '...5'");
}

static void test_times(void)
{
	CHECK_NUM("mtime:<7d", QF_MTIME, QOP_GT, NOW - 7 * DAY, 0);
	CHECK_NUM("mtime:7d", QF_MTIME, QOP_GT, NOW - 7 * DAY, 0);
	CHECK_NUM("mtime:>7d", QF_MTIME, QOP_LT, NOW - 7 * DAY, 0);
	CHECK_NUM("mtime:<=12h", QF_MTIME, QOP_GE, NOW - 12 * 3600 * SEC, 0);
	CHECK_NUM("mtime:>=30m", QF_MTIME, QOP_LE, NOW - 30 * 60 * SEC, 0);
	CHECK_NUM("atime:<2w", QF_ATIME, QOP_GT, NOW - 14 * DAY, 0);
	CHECK_NUM("ctime:<90s", QF_CTIME, QOP_GT, NOW - 90 * SEC, 0);
	CHECK_NUM("ctime:0s", QF_CTIME, QOP_GT, NOW, 0);
	CHECK_NUM("mtime:1d..7d", QF_MTIME, QOP_RANGE, NOW - 7 * DAY, NOW - DAY);
	CHECK_NUM("mtime:7d..1d", QF_MTIME, QOP_RANGE, NOW - 7 * DAY, NOW - DAY);

	CHECK_NUM("mtime:<2024-01-01", QF_MTIME, QOP_LT, JAN1_2024, 0);
	CHECK_NUM("mtime:>=2024-01-01", QF_MTIME, QOP_GE, JAN1_2024, 0);
	CHECK_NUM("mtime:<=2024-01-01", QF_MTIME, QOP_LE, JAN1_2024 + DAY - 1, 0);
	CHECK_NUM("mtime:>2024-01-01", QF_MTIME, QOP_GT, JAN1_2024 + DAY - 1, 0);
	CHECK_NUM("mtime:2024-01-01", QF_MTIME, QOP_RANGE, JAN1_2024, JAN1_2024 + DAY - 1);
	CHECK_NUM("mtime:2024-01-01T12:30", QF_MTIME, QOP_RANGE, JAN1_2024 + 45000 * SEC,
		  JAN1_2024 + 45060 * SEC - 1);
	CHECK_NUM("mtime:<2024-01-01T12:30:15", QF_MTIME, QOP_LT, JAN1_2024 + 45015 * SEC, 0);
	CHECK_NUM("mtime:<2024-01-01T12:30:15Z", QF_MTIME, QOP_LT, JAN1_2024 + 45015 * SEC, 0);
	CHECK_NUM("mtime:2024-01-01..2024-01-31", QF_MTIME, QOP_RANGE, JAN1_2024, JAN1_2024 + 31 * DAY - 1);
	CHECK_NUM("mtime:2024-01-31..2024-01-01", QF_MTIME, QOP_RANGE, JAN1_2024, JAN1_2024 + 31 * DAY - 1);
	CHECK_NUM("ctime:2024-02-29", QF_CTIME, QOP_RANGE, JAN1_2024 + 59 * DAY, JAN1_2024 + 60 * DAY - 1);
	CHECK_NUM("mtime:1970-01-01", QF_MTIME, QOP_RANGE, 0, DAY - 1);
	CHECK_NUM("mtime:<2000-03-01", QF_MTIME, QOP_LT, 951868800LL * SEC, 0);
	CHECK_NUM("mtime:<1969-12-31", QF_MTIME, QOP_LT, -DAY, 0);
	CHECK_NUM("mtime:2024-01-01..7d", QF_MTIME, QOP_RANGE, NOW - 7 * DAY, JAN1_2024 + DAY - 1);
	CHECK_FMT("mtime:<7d", "(TERM mtime > 1699395200000000000)");

	CHECK_ERR("mtime:7", 0, "bad time '7' at column 1 (use e.g. 7d");
	CHECK_ERR("mtime:7y", 0, "bad time '7y'");
	CHECK_ERR("mtime:d", 0, "bad time 'd'");
	CHECK_ERR("mtime:7D", 0, "bad time '7D'");
	CHECK_ERR("mtime:2023-02-29", 0, "bad time '2023-02-29'");
	CHECK_ERR("mtime:2024-13-01", 0, "bad time");
	CHECK_ERR("mtime:2024-04-31", 0, "bad time");
	CHECK_ERR("mtime:2024-1-1", 0, "bad time");
	CHECK_ERR("mtime:2024-01-01T25:00", 0, "bad time");
	CHECK_ERR("mtime:2024-01-01T12", 0, "bad time");
	CHECK_ERR("mtime:2024-01-01T12:00:60", 0, "bad time");
	CHECK_ERR("mtime:2024-01-01x", 0, "bad time");
	CHECK_ERR("mtime:2300-01-01", 0, "bad time");
	CHECK_ERR("mtime:99999999999w", 0, "bad time");
	CHECK_ERR("mtime:1d..x", 0, "bad time 'x'");
}

static void test_other_fields(void)
{
	CHECK_NUM("user:root", QF_UID, QOP_MATCH, 0, 0);
	CHECK_NUM("user:1000", QF_UID, QOP_MATCH, 1000, 0);
	CHECK_NUM("group:root", QF_GID, QOP_MATCH, 0, 0);
	CHECK_NUM("group:50", QF_GID, QOP_MATCH, 50, 0);
	CHECK_NUM("uid:>=1000", QF_UID, QOP_GE, 1000, 0);
	CHECK_NUM("uid:1000..2000", QF_UID, QOP_RANGE, 1000, 2000);
	CHECK_NUM("gid:0", QF_GID, QOP_MATCH, 0, 0);
	CHECK_FMT("user:root", "(TERM uid = 0)");
	CHECK_ERR("user:no-such-user-here", 0, "unknown user 'no-such-user-here' at column 1");
	CHECK_ERR("group:no-such-group-here", 0, "unknown group 'no-such-group-here'");
	CHECK_ERR("uid:root", 0, "bad number 'root' for 'uid'");
	CHECK_ERR("uid:4294967296", 0, "bad number");
	CHECK_ERR("user:99999999999", 0, "bad user id");

	CHECK_NUM("mode:644", QF_MODE, QOP_MATCH, 0644, 0);
	CHECK_NUM("mode:0755", QF_MODE, QOP_MATCH, 0755, 0);
	CHECK_NUM("mode:4755", QF_MODE, QOP_MATCH, 04755, 0);
	CHECK_FMT("mode:644", "(TERM mode = 0644)");
	CHECK_ERR("mode:999", 0, "bad mode '999' at column 1 (use octal");
	CHECK_ERR("mode:17777", 0, "bad mode");
	CHECK_ERR("mode:rwx", 0, "bad mode");

	CHECK_NUM("nlink:>1", QF_NLINK, QOP_GT, 1, 0);
	CHECK_NUM("nlink:2..5", QF_NLINK, QOP_RANGE, 2, 5);
	CHECK_ERR("nlink:two", 0, "bad number 'two' for 'nlink'");

	CHECK_NUM("type:f", QF_TYPE, QOP_MATCH, S_IFREG, 0);
	CHECK_NUM("type:file", QF_TYPE, QOP_MATCH, S_IFREG, 0);
	CHECK_NUM("type:d", QF_TYPE, QOP_MATCH, S_IFDIR, 0);
	CHECK_NUM("type:dir", QF_TYPE, QOP_MATCH, S_IFDIR, 0);
	CHECK_NUM("type:l", QF_TYPE, QOP_MATCH, S_IFLNK, 0);
	CHECK_NUM("type:symlink", QF_TYPE, QOP_MATCH, S_IFLNK, 0);
	CHECK_NUM("type:p", QF_TYPE, QOP_MATCH, S_IFIFO, 0);
	CHECK_NUM("type:fifo", QF_TYPE, QOP_MATCH, S_IFIFO, 0);
	CHECK_NUM("type:s", QF_TYPE, QOP_MATCH, S_IFSOCK, 0);
	CHECK_NUM("type:socket", QF_TYPE, QOP_MATCH, S_IFSOCK, 0);
	CHECK_NUM("type:c", QF_TYPE, QOP_MATCH, S_IFCHR, 0);
	CHECK_NUM("type:char", QF_TYPE, QOP_MATCH, S_IFCHR, 0);
	CHECK_NUM("type:b", QF_TYPE, QOP_MATCH, S_IFBLK, 0);
	CHECK_NUM("type:block", QF_TYPE, QOP_MATCH, S_IFBLK, 0);
	CHECK_NUM("type:Dir", QF_TYPE, QOP_MATCH, S_IFDIR, 0);
	CHECK_FMT("type:dir", "(TERM type = d)");
	CHECK_ERR("type:x", 0, "bad type 'x' at column 1 (use f, d, l, p, s, c or b)");

	struct q_node *n = term("name:*.c");
	CHECK(n && n->f == QF_NAME && n->glob && !strcmp(n->value, "*.c"), "name:*.c is a glob");
	q_free(n);
	n = term("name:a?b");
	CHECK(n && n->glob, "name:a?b is a glob");
	q_free(n);
	n = term("name:README");
	CHECK(n && n->f == QF_NAME && !n->glob, "name:README is not a glob");
	q_free(n);
	CHECK_FMT("name:*.c", "(TERM name glob \"*.c\")");
	CHECK_ERR("name:a/b", 0, "name 'a/b' contains '/' at column 1 (use path: for paths)");

	CHECK_FMT("path:/home/me", "(TERM path = \"/home/me\")");
	CHECK_FMT("path:/home/me/", "(TERM path = \"/home/me\")");
	CHECK_FMT("path://a//b/./c/../d", "(TERM path = \"/a/b/d\")");
	CHECK_FMT("path:/", "(TERM path = \"/\")");
	CHECK_FMT("path:/../..", "(TERM path = \"/\")");
	CHECK_FMT("path:/a/..", "(TERM path = \"/\")");
	CHECK_ERR("path:home/me", 0, "path 'home/me' is not absolute at column 1");

	CHECK_FMT("tag:work", "(TERM tag = \"work\")");
	n = term("tag:work");
	CHECK(n && n->f == QF_TAG && n->vtype == QV_STRING, "tag is a string field");
	q_free(n);

	static const char *const no_compare[] = { "name", "path", "type", "tag", "user", "group", "mode" };
	for (size_t i = 0; i < sizeof no_compare / sizeof *no_compare; i++) {
		char q[64], msg[64];
		snprintf(q, sizeof q, "x %s:>5", no_compare[i]);
		snprintf(msg, sizeof msg, "field '%s' cannot be compared with '>' at column 3",
			 no_compare[i]);
		CHECK_ERR(q, 2, msg);
		if (strcmp(no_compare[i], "name") && strcmp(no_compare[i], "path") &&
		    strcmp(no_compare[i], "tag")) {
			snprintf(q, sizeof q, "%s:a..b", no_compare[i]);
			snprintf(msg, sizeof msg, "field '%s' cannot take a range", no_compare[i]);
			CHECK_ERR(q, 0, msg);
		}
	}
	/* string fields take no ranges, so ".." in them is text */
	CHECK_FMT("name:v1..2.tar", "(TERM name = \"v1..2.tar\")");
	CHECK_FMT("tag:a..b", "(TERM tag = \"a..b\")");
	CHECK_FMT("name:a..*", "(TERM name glob \"a..*\")");
	CHECK_ERR("path:a..b", 0, "path 'a..b' is not absolute");
	CHECK_ERR("name:<=x", 0, "field 'name' cannot be compared with '<='");
}

static void test_attrs(void)
{
	char asked[128] = "";
	struct q_node *n;
	CHECK(q_parse("annotations.bicycles:>3", &n, NULL, 0, NULL) == 0 &&
		      q_resolve(n, NOW, has_attr, asked, NULL, 0, NULL) == 0,
	      "a dotted xattr field");
	CHECK(n->f == QF_ATTR && !strcmp(n->attr, "annotations.bicycles") && n->vtype == QV_NUMBER &&
		      n->real == 3 && n->num == 3 && n->op == QOP_GT,
	      "a dotted xattr field compared with a number");
	CHECK(!strcmp(asked, "annotations.bicycles"), "has_attr was asked for the dotted name");
	q_free(n);

	CHECK(q_parse("user.rating:4.5", &n, NULL, 0, NULL) == 0 &&
		      q_resolve(n, NOW, has_attr, asked, NULL, 0, NULL) == 0,
	      "a user. field");
	CHECK(!strcmp(asked, "rating") && n->f == QF_ATTR && !strcmp(n->attr, "rating") &&
		      !strcmp(n->field, "user.rating"),
	      "user. is stripped before has_attr and in attr, and kept in field");
	CHECK(n->vtype == QV_NUMBER && n->real == 4.5, "4.5 is a number");
	q_free(n);

	n = term("user.name:x");
	CHECK(n && n->f == QF_ATTR && !strcmp(n->attr, "name"),
	      "user.name: reaches the xattr, not the built-in");
	q_free(n);
	n = term("done:true");
	CHECK(n && n->vtype == QV_BOOL && n->num == 1, "true is a boolean");
	q_free(n);
	n = term("done:false");
	CHECK(n && n->vtype == QV_BOOL && n->num == 0, "false is a boolean");
	q_free(n);
	n = term("color:red");
	CHECK(n && n->vtype == QV_STRING && !strcmp(n->value, "red"), "red is a string");
	q_free(n);
	n = term("color:\"42\"");
	CHECK(n && n->vtype == QV_STRING, "a quoted number is a string");
	q_free(n);
	n = term("color:True");
	CHECK(n && n->vtype == QV_STRING, "True is a string");
	q_free(n);
	n = term("rating:-2.5e1");
	CHECK(n && n->vtype == QV_NUMBER && n->real == -25 && n->num == -25, "-2.5e1 is the number -25");
	q_free(n);
	n = term("rating:0.5");
	CHECK(n && n->vtype == QV_NUMBER && n->real == 0.5 && n->num == 0, "0.5 is a number, not integral");
	q_free(n);
	static const char *const strings[] = { "rating:0x10",  "rating:inf",   "rating:-nan", "rating:1e999",
					       "rating:1.2.3", "rating:12abc", "rating:-" };
	for (size_t i = 0; i < sizeof strings / sizeof *strings; i++) {
		n = term(strings[i]);
		CHECK(n && n->vtype == QV_STRING, "%s is a string", strings[i]);
		q_free(n);
	}
	n = term("rating:5..1");
	CHECK(n && n->op == QOP_RANGE && n->real == 1 && n->real2 == 5 && n->num == 1 && n->num2 == 5,
	      "a numeric xattr range, ends ordered");
	q_free(n);
	n = term("x.y-z:1");
	CHECK(n && n->f == QF_ATTR && !strcmp(n->attr, "x.y-z"), "a field with dots and dashes");
	q_free(n);

	CHECK_FMT("rating:>=4 done:true color:red", "(AND (TERM attr:rating >= 4) (TERM attr:done = true) "
						    "(TERM attr:color = \"red\"))");
	CHECK_FMT("rating:0.1..2.5", "(TERM attr:rating in 0.1 2.5)");
	CHECK_FMT("color:\"true\"", "(TERM attr:color = \"true\")");
	/* an xattr set to the empty string */
	CHECK_FMT("color:\"\"", "(TERM attr:color = \"\")");
	CHECK_FMT("-color:\"\" a", "(AND (NOT (TERM attr:color = \"\")) (TERM text = \"a\"))");

	CHECK_ERR("foo:bar", 0,
		  "unknown field 'foo' at column 1 (not a built-in field and no file in the index has that "
		  "xattr)");
	CHECK_ERR("a OR user.foo:bar", 5, "unknown field 'user.foo' at column 6");
	CHECK_ERR("user.:x", 0, "unknown field 'user.'");
	CHECK_ERR("Size:1", 0, "unknown field 'Size'");
	CHECK_ERR("rating:>abc", 0,
		  "'abc' is not a number, and field 'rating' is compared with '>' at column 1");
	CHECK_ERR("color:red..blue", 0, "'red' is not a number");
	CHECK_ERR("rating:1..x", 0, "'x' is not a number");
	CHECK_ERR("rating:<\"5\"", 0, "'5' is not a number");

	/* no has_attr: every non-built-in field is unknown */
	CHECK(q_parse("rating:1", &n, NULL, 0, NULL) == 0 &&
		      q_resolve(n, NOW, NULL, NULL, NULL, 0, NULL) == -1,
	      "without has_attr, xattr fields are unknown");
	q_free(n);
}

static void test_parse_errors(void)
{
	CHECK_ERR("", 0, "empty query");
	CHECK_ERR(" \t\n", 0, "empty query");
	CHECK_ERR("(", 0, "unbalanced '(' at column 1 (no matching ')')");
	CHECK_ERR("a (b", 2, "unbalanced '(' at column 3");
	CHECK_ERR("((a)", 0, "unbalanced '('");
	CHECK_ERR("a)", 1, "unexpected ')' at column 2");
	CHECK_ERR("a OR b)", 6, "unexpected ')' at column 7");
	CHECK_ERR("(a))", 3, "unexpected ')' at column 4");
	CHECK_ERR(")", 0, "unexpected ')' at column 1");
	CHECK_ERR("()", 0, "empty parentheses at column 1");
	CHECK_ERR("a ( )", 2, "empty parentheses at column 3");
	CHECK_ERR("a OR", 2, "missing operand after 'OR' at column 3");
	CHECK_ERR("a AND", 2, "missing operand after 'AND' at column 3");
	CHECK_ERR("AND b", 0, "missing operand before 'AND' at column 1");
	CHECK_ERR("OR", 0, "missing operand before 'OR'");
	CHECK_ERR("a (OR b)", 3, "missing operand before 'OR' at column 4");
	CHECK_ERR("-", 0, "missing operand after '-' at column 1");
	CHECK_ERR("a -", 2, "missing operand after '-' at column 3");
	CHECK_ERR("NOT", 0, "missing operand after 'NOT'");
	CHECK_ERR("(a OR)", 3, "missing operand after 'OR' at column 4");
	CHECK_ERR("a OR OR b", 2, "missing operand after 'OR'");
	CHECK_ERR("a AND OR b", 2, "missing operand after 'AND'");
	CHECK_ERR("-)", 0, "missing operand after '-'");
	CHECK_ERR("size:", 0, "missing value after 'size:' at column 1");
	CHECK_ERR("x size:>", 2, "missing value after 'size:>' at column 3");
	CHECK_ERR("size: 5", 0, "missing value after 'size:'");
	CHECK_ERR("(size:)", 1, "missing value after 'size:'");
	CHECK_ERR("tag:\"\"", 0, "field 'tag' needs a value at column 1 (only an xattr can be matched with \"\")");
	CHECK_ERR("x size:\"\"", 2, "field 'size' needs a value");
	CHECK_ERR("color:>\"\"", 0, "missing value after 'color:>'");
	CHECK_ERR("\"abc", 0, "unterminated quote at column 1");
	CHECK_ERR("a \"b\\\"", 2, "unterminated quote at column 3");
	CHECK_ERR("name:\"abc", 5, "unterminated quote at column 6");
	CHECK_ERR("\"\"", 0, "empty quoted string");
	CHECK_ERR("size:>1..5", 0, "'size:>' cannot be combined with a range at column 1");
	CHECK_ERR("size:..", 0, "bare '..' after 'size:'");
	CHECK_ERR("a ..", 2, "bare '..'");

	/* values that merely look like ranges */
	CHECK_FMT("tag:a..", "(TERM tag = \"a..\")");
	CHECK_FMT("tag:\"a..b\"", "(TERM tag = \"a..b\")");
	CHECK_FMT("a..b", "(TERM text = \"a..b\")");

	char err[200];
	int pos = 7;
	struct q_node *n = (struct q_node *)&pos;
	CHECK(q_parse(NULL, &n, err, sizeof err, &pos) == -1 && n == NULL && pos == 0, "a NULL query");
	CHECK(q_parse("(", &n, NULL, 0, NULL) == -1, "errors without a message buffer");
	CHECK(q_parse("((((", &n, err, 5, &pos) == -1 && strlen(err) == 4, "a short message buffer");
	CHECK(q_parse("a OR", &n, err, 1, NULL) == -1 && err[0] == 0, "a one-byte message buffer");
	char lng[300];
	memset(lng, 'z', sizeof lng - 1);
	lng[sizeof lng - 1] = 0;
	lng[290] = ':';
	CHECK(q_parse(lng, &n, NULL, 0, NULL) == 0 &&
		      q_resolve(n, NOW, has_attr, NULL, err, sizeof err, &pos) && strlen(err) < 150,
	      "long values are cut short in messages: %s", err);
	q_free(n);
}

static void test_limits(void)
{
	char q[400];
	size_t k = 0;
	for (int i = 0; i < 100; i++)
		q[k++] = '(';
	q[k++] = 'a';
	for (int i = 0; i < 100; i++)
		q[k++] = ')';
	q[k] = 0;
	CHECK_FMT(q, "(TERM text = \"a\")");
	k = 0;
	for (int i = 0; i < 101; i++)
		q[k++] = '(';
	q[k++] = 'a';
	for (int i = 0; i < 101; i++)
		q[k++] = ')';
	q[k] = 0;
	CHECK_ERR(q, 100, "query nested more than 100 levels deep at column 101");
	k = 0;
	for (int i = 0; i < 101; i++)
		q[k++] = '-';
	q[k++] = 'a';
	q[k] = 0;
	CHECK_ERR(q, 100, "nested more than 100 levels");
	k = 0;
	for (int i = 0; i < 50; i++)
		q[k++] = '-', q[k++] = '(';
	q[k++] = 'a';
	for (int i = 0; i < 50; i++)
		q[k++] = ')';
	q[k] = 0;
	CHECK(strstr(fmt(q), "(NOT (NOT") != NULL, "50 negated parentheses are 100 levels: allowed");

	/* a flood of the deepest-reaching tokens, well past the limits */
	size_t big = 1 << 20;
	char *s = malloc(big + 1);
	memset(s, '(', big);
	s[big] = 0;
	CHECK_ERR(s, 65536, "query longer than 65536 bytes");
	s[65536] = 0;
	CHECK_ERR(s, 100, "nested more than 100 levels");
	memset(s, '-', 65536);
	CHECK_ERR(s, 100, "nested more than 100 levels");
	memset(s, 'a', 65536);
	struct q_node *n;
	CHECK(q_parse(s, &n, NULL, 0, NULL) == 0 && n->kind == Q_TERM && strlen(n->value) == 65536,
	      "a 65536-byte word is accepted");
	q_free(n);
	for (size_t i = 1; i < 65536; i += 2)
		s[i] = ' ';
	CHECK(q_parse(s, &n, NULL, 0, NULL) == 0, "32768 words are accepted");
	CHECK(depth(n) <= 17, "and make a tree %d deep", depth(n));
	CHECK(q_resolve(n, NOW, has_attr, NULL, NULL, 0, NULL) == 0, "and resolve");
	int len = q_format(n, NULL, 0);
	CHECK(len == 5 + 32768 * 18, "q_format reports the whole length without a buffer: %d", len);
	char small[16];
	CHECK(q_format(n, small, sizeof small) == len && strlen(small) == 15, "and truncates to the buffer");
	q_free(n);
	for (size_t i = 0; i + 3 < 65536; i += 3)
		memcpy(s + i, "-a ", 3);
	CHECK(q_parse(s, &n, NULL, 0, NULL) == 0, "21845 negated words are accepted");
	q_free(n);
	s[65536] = 'a';
	s[65537] = 0;
	CHECK_ERR(s, 65536, "query longer than 65536 bytes");
	free(s);
	q_free(NULL);
	CHECK(q_format(NULL, small, sizeof small) == 2 && !strcmp(small, "()"), "q_format of no tree");
}

int main(void)
{
	test_precedence();
	test_quotes();
	test_size();
	test_times();
	test_other_fields();
	test_attrs();
	test_parse_errors();
	test_limits();
	return t_done();
}
