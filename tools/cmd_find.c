/* SPDX-License-Identifier: Apache-2.0 */
/* metafs find: asks a volume's search index, shows only what the caller
 * could reach by walking the tree. */
#include "tools.h"
#include "indexer.h"
#include "common.h"

#include <errno.h>
#include <getopt.h>
#include <grp.h>
#include <jansson.h>
#include <limits.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

static const char usage_text[] =
	"usage: metafs find [PATH...] QUERY [options]\n"
	"  Searches the index of the volume that PATH is in (a directory inside a\n"
	"  mounted metafs, or a volume); without PATH, the current directory.\n"
	"\n"
	"query language:\n"
	"  word                 a word in a name, a path or an xattr's text\n"
	"  \"two words\"          a phrase\n"
	"  field:value          name:report, name:'*.jpg' (glob), path:/a/b (subtree),\n"
	"                       type:f|d|l|p|s|c|b, tag:beach, user:alice, group:staff,\n"
	"                       uid:N, gid:N, mode:644, nlink:2\n"
	"  field:>N  field:>=N  field:<N  field:<=N  field:N..M\n"
	"                       size:>10M, mtime:<7d (changed in the last 7 days),\n"
	"                       mtime:<2024-01-01, nlink:>1\n"
	"  xattr fields         any user.* xattr by its name without 'user.':\n"
	"                       project:apollo, project:\"\" (set, empty); JSON\n"
	"                       values by dotted names:\n"
	"                       annotations.bicycles:>3, review.approved:true\n"
	"  a b                  both (also: a AND b)\n"
	"  a OR b, -a, NOT a, ( ... )\n"
	"\n"
	"options:\n"
	"  -0               end each path with NUL instead of a newline\n"
	"  --json           one JSON object a line with the indexed fields\n"
	"  -l               long listing (mode, links, owner, group, size, mtime, path)\n"
	"  --sort KEY       score (default: BM25 of the free words, ties by inode),\n"
	"                   name, size, mtime, path\n"
	"  --reverse        reverse the order\n"
	"  --limit N        at most N results\n"
	"  --count          print only how many results\n"
	"  --consistent     first wait until the index holds every change committed\n"
	"                   before the query started (read-your-writes)\n"
	"  --timeout SEC    how long --consistent waits (default 10)\n"
	"exit status: 0 success (also with no results), 1 error, 2 bad query or usage\n";

struct target {
	char vol[PATH_MAX];
	char mnt[PATH_MAX];
	char sub[PATH_MAX]; /* subtree inside the volume */
};

/* ---------------------------------------------------------------- permissions */

struct who {
	uid_t uid;
	gid_t gid;
	gid_t groups[256];
	int ngroups;
};

static bool in_group(const struct who *w, uint32_t gid)
{
	if (gid == w->gid)
		return true;
	for (int i = 0; i < w->ngroups; i++)
		if (w->groups[i] == gid)
			return true;
	return false;
}

/* want: 4 read, 1 search */
static bool may(const struct who *w, const struct idx_hit *d, unsigned want)
{
	unsigned bits;
	if (w->uid == d->uid)
		bits = (d->mode >> 6) & 7;
	else if (in_group(w, d->gid))
		bits = (d->mode >> 3) & 7;
	else
		bits = d->mode & 7;
	return (bits & want) == want;
}

struct dir_memo {
	uint64_t ino[1024];
	signed char ok[1024];
};

/* Can the caller walk from the root down into dir (search on every
 * directory on the way)? */
static bool reachable(struct idx_backend *be, const struct who *w, struct dir_memo *m, uint64_t dir, int depth)
{
	size_t slot = (size_t)(dir * 0x9E3779B97F4A7C15ULL >> 54) & 1023;
	if (m->ino[slot] == dir && m->ok[slot])
		return m->ok[slot] > 0;
	struct idx_hit d;
	bool ok = depth < 4096 && be->ops->get(be, dir, &d) == 0 && may(w, &d, 1) &&
		  (dir == MFS_ROOT_INO || reachable(be, w, m, d.parent, depth + 1));
	m->ino[slot] = dir;
	m->ok[slot] = ok ? 1 : -1;
	return ok;
}

/* ---------------------------------------------------------------- output */

enum out_kind { OUT_PATHS, OUT_JSON, OUT_LONG };

struct run {
	struct idx_backend *be;
	const struct target *t;
	enum out_kind out;
	bool nul, count_only, root;
	long limit;
	long shown;
	struct who who;
	struct dir_memo memo;
};

static void mode_string(uint32_t m, char out[11])
{
	static const char types[] = "?pc?d?b?-?l?s???";
	out[0] = types[(m >> 12) & 15];
	const char *rwx = "rwxrwxrwx";
	for (int i = 0; i < 9; i++)
		out[1 + i] = (m & (1u << (8 - i))) ? rwx[i] : '-';
	if (m & S_ISUID)
		out[3] = (m & S_IXUSR) ? 's' : 'S';
	if (m & S_ISGID)
		out[6] = (m & S_IXGRP) ? 's' : 'S';
	if (m & S_ISVTX)
		out[9] = (m & S_IXOTH) ? 't' : 'T';
	out[10] = '\0';
}

static void user_name(uint32_t uid, char *out, size_t len)
{
	struct passwd pw, *res;
	char buf[1024];
	if (getpwuid_r(uid, &pw, buf, sizeof buf, &res) == 0 && res)
		snprintf(out, len, "%s", pw.pw_name);
	else
		snprintf(out, len, "%u", uid);
}

static void group_name(uint32_t gid, char *out, size_t len)
{
	struct group gr, *res;
	char buf[1024];
	if (getgrgid_r(gid, &gr, buf, sizeof buf, &res) == 0 && res)
		snprintf(out, len, "%s", gr.gr_name);
	else
		snprintf(out, len, "%u", gid);
}

static int add_field(void *arg, const char *key, const double *num, const char *str)
{
	json_t *fields = arg;
	json_t *v;
	if (num && str && (*num == 1 || *num == 0) && !strcmp(str, *num ? "true" : "false"))
		v = json_boolean(*num == 1); /* a JSON boolean is indexed as 1/0 and its word */
	else if (num && *num == (double)(json_int_t)*num)
		v = json_integer((json_int_t)*num);
	else
		v = num ? json_real(*num) : str ? json_string(str) : json_null();
	if (!strcmp(key, "tag")) {
		json_t *tags = json_object_get(fields, "tags");
		if (!tags)
			json_object_set_new(fields, "tags", tags = json_array());
		json_array_append_new(tags, v);
		return 0;
	}
	json_t *x = json_object_get(fields, "xattrs");
	if (!x)
		json_object_set_new(fields, "xattrs", x = json_object());
	json_t *old = json_object_get(x, key);
	if (!old) {
		json_object_set_new(x, key, v);
	} else if (json_is_array(old)) {
		json_array_append_new(old, v);
	} else {
		json_t *a = json_array();
		json_array_append(a, old);
		json_array_append_new(a, v);
		json_object_set_new(x, key, a);
	}
	return 0;
}

static int on_hit(void *arg, const struct idx_hit *h)
{
	struct run *r = arg;
	if (r->limit >= 0 && r->shown >= r->limit)
		return 1;
	if (!r->root) {
		/* list the directory (read + search), and reach it */
		struct idx_hit dir;
		if (r->be->ops->get(r->be, h->parent, &dir) != 0 || !may(&r->who, &dir, 5) ||
		    !reachable(r->be, &r->who, &r->memo, h->parent, 0))
			return 0;
	}
	r->shown++;
	if (r->count_only)
		return r->limit >= 0 && r->shown >= r->limit ? 1 : 0;
	/* a path through the mount when asked through one */
	const char *prefix = r->t->mnt[0] ? r->t->mnt : "";
	size_t plen = strlen(prefix);
	if (plen == 1 && prefix[0] == '/')
		plen = 0;
	if (r->out == OUT_PATHS) {
		fwrite(prefix, 1, plen, stdout);
		fwrite(h->path, 1, h->path_len, stdout);
		putchar(r->nul ? '\0' : '\n');
	} else if (r->out == OUT_LONG) {
		char mode[11], user[64], group[64], when[32];
		mode_string(h->mode, mode);
		user_name(h->uid, user, sizeof user);
		group_name(h->gid, group, sizeof group);
		time_t t = (time_t)(h->mtime / 1000000000LL);
		struct tm tm;
		localtime_r(&t, &tm);
		strftime(when, sizeof when, "%Y-%m-%d %H:%M", &tm);
		printf("%s %3u %-8s %-8s %12llu %s ", mode, h->nlink, user, group, (unsigned long long)h->size, when);
		fwrite(prefix, 1, plen, stdout);
		fwrite(h->path, 1, h->path_len, stdout);
		putchar(r->nul ? '\0' : '\n');
	} else {
		json_t *o = json_object();
		char *full = malloc(plen + h->path_len + 1);
		if (!full)
			return -ENOMEM;
		memcpy(full, prefix, plen);
		memcpy(full + plen, h->path, h->path_len);
		full[plen + h->path_len] = '\0';
		json_t *p = json_stringn(full, plen + h->path_len);
		if (p) {
			json_object_set_new(o, "path", p);
		} else {
			/* a name that is not UTF-8: bytes kept as \u escapes of Latin-1 */
			char *esc = malloc((plen + h->path_len) * 2 + 1), *q = esc;
			for (size_t i = 0; esc && i < plen + h->path_len; i++) {
				unsigned char c = (unsigned char)full[i];
				if (c < 0x80) {
					*q++ = (char)c;
				} else {
					*q++ = (char)(0xc0 | (c >> 6));
					*q++ = (char)(0x80 | (c & 0x3f));
				}
			}
			if (esc) {
				*q = '\0';
				json_object_set_new(o, "path_latin1", json_string(esc));
			}
			free(esc);
		}
		free(full);
		char ts[64], user[64], group[64], mode[8];
		json_object_set_new(o, "ino", json_integer((json_int_t)h->ino));
		json_object_set_new(o, "type", json_string(type_name(h->mode)));
		json_object_set_new(o, "size", json_integer((json_int_t)h->size));
		snprintf(mode, sizeof mode, "%04o", h->mode & 07777);
		json_object_set_new(o, "mode", json_string(mode));
		json_object_set_new(o, "uid", json_integer(h->uid));
		json_object_set_new(o, "gid", json_integer(h->gid));
		user_name(h->uid, user, sizeof user);
		group_name(h->gid, group, sizeof group);
		json_object_set_new(o, "user", json_string(user));
		json_object_set_new(o, "group", json_string(group));
		json_object_set_new(o, "nlink", json_integer(h->nlink));
		mfs_format_time(h->atime, ts, sizeof ts);
		json_object_set_new(o, "atime", json_string(ts));
		mfs_format_time(h->mtime, ts, sizeof ts);
		json_object_set_new(o, "mtime", json_string(ts));
		mfs_format_time(h->ctime, ts, sizeof ts);
		json_object_set_new(o, "ctime", json_string(ts));
		json_object_set_new(o, "score", json_real(h->score));
		json_object_set_new(o, "xattrs", json_object());
		json_object_set_new(o, "tags", json_array());
		r->be->ops->fields_of(r->be, h->ino, add_field, o);
		char *s = json_dumps(o, JSON_COMPACT | JSON_PRESERVE_ORDER);
		if (s)
			puts(s);
		free(s);
		json_decref(o);
	}
	if (ferror(stdout))
		return -EPIPE;
	return r->limit >= 0 && r->shown >= r->limit ? 1 : 0;
}

/* ---------------------------------------------------------------- arguments */

static bool looks_like_path(const char *a)
{
	struct stat st;
	return (a[0] == '/' || a[0] == '.' || strchr(a, '/')) && stat(a, &st) == 0;
}

static int target_of(const char *arg, struct target *t)
{
	if (resolve_target(arg, t->vol, sizeof t->vol, t->mnt, sizeof t->mnt))
		return -1;
	t->sub[0] = '\0';
	if (t->mnt[0]) {
		char real[PATH_MAX];
		if (!realpath(arg, real)) {
			die_msg("%s: %s", arg, strerror(errno));
			return -1;
		}
		size_t ml = strlen(t->mnt);
		const char *rest = !strcmp(t->mnt, "/") ? real : real + ml;
		snprintf(t->sub, sizeof t->sub, "%s", rest[0] ? rest : "/");
	}
	return 0;
}

static bool has_attr_cb(void *arg, const char *name)
{
	struct idx_backend *be = arg;
	return be->ops->has_attr(be, name);
}

/* Waits until the index has applied everything the volume had committed. */
static int wait_consistent(struct idx_backend *be, const char *vol, double timeout)
{
	char err[1024] = "";
	struct mfs_volume *v;
	if (mfs_open(vol, STORE_OPEN_READONLY, &v, err, sizeof err)) {
		die_msg("%s", err);
		return -1;
	}
	uint64_t first, last, have = 0;
	int rc = v->store->ops->changelog_bounds(v->store, &first, &last);
	mfs_close(v);
	if (rc) {
		die_msg("%s: cannot read the changelog: %s", vol, strerror(-rc));
		return -1;
	}
	int64_t deadline = mfs_now_ns() + (int64_t)(timeout * 1e9);
	for (;;) {
		if (be->ops->cursor(be, &have) == 0 && have >= last)
			return 0;
		if (mfs_now_ns() > deadline)
			break;
		mfs_sleep_us(10000);
	}
	die_msg("the index of %s has applied changes up to %llu of %llu and did not catch up in %g s "
		"(is the volume mounted with its indexer, or `metafs indexer` running?)",
		vol, (unsigned long long)have, (unsigned long long)last, timeout);
	return -1;
}

int cmd_find(int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "json", no_argument, NULL, 'j' },
		{ "sort", required_argument, NULL, 's' },
		{ "reverse", no_argument, NULL, 'r' },
		{ "limit", required_argument, NULL, 'n' },
		{ "count", no_argument, NULL, 'c' },
		{ "consistent", no_argument, NULL, 'C' },
		{ "timeout", required_argument, NULL, 'T' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	struct run r = { .out = OUT_PATHS, .limit = -1 };
	struct idx_query_opts qo = { .sort = IDX_SORT_SCORE };
	bool consistent = false;
	double timeout = 10;
	/* Options may come anywhere, but a query word may start with '-'
	 * (-tag:x): only --long options and the exact short ones are
	 * options; everything else, and all after "--", is PATH or query. */
	char **opts = calloc((size_t)argc + 1, sizeof *opts), **words = calloc((size_t)argc + 1, sizeof *words);
	if (!opts || !words)
		return 1;
	int nopts = 0, nwords = 0;
	opts[nopts++] = argv[0];
	for (int i = 1; i < argc; i++) {
		const char *a = argv[i];
		if (!strcmp(a, "--")) {
			while (++i < argc)
				words[nwords++] = argv[i];
			break;
		}
		bool takes_value = !strcmp(a, "--sort") || !strcmp(a, "--limit") || !strcmp(a, "--timeout");
		if (!strncmp(a, "--", 2) || !strcmp(a, "-0") || !strcmp(a, "-l") || !strcmp(a, "-h") ||
		    !strcmp(a, "-0l") || !strcmp(a, "-l0")) {
			opts[nopts++] = argv[i];
			if (takes_value && i + 1 < argc)
				opts[nopts++] = argv[++i];
		} else {
			words[nwords++] = argv[i];
		}
	}
	int c;
	optind = 1;
	while ((c = getopt_long(nopts, opts, "0lh", longopts, NULL)) != -1) {
		switch (c) {
		case '0': r.nul = true; break;
		case 'l': r.out = OUT_LONG; break;
		case 'j': r.out = OUT_JSON; break;
		case 'r': qo.reverse = true; break;
		case 'c': r.count_only = true; break;
		case 'C': consistent = true; break;
		case 's':
			if (!strcmp(optarg, "score")) qo.sort = IDX_SORT_SCORE;
			else if (!strcmp(optarg, "name")) qo.sort = IDX_SORT_NAME;
			else if (!strcmp(optarg, "size")) qo.sort = IDX_SORT_SIZE;
			else if (!strcmp(optarg, "mtime")) qo.sort = IDX_SORT_MTIME;
			else if (!strcmp(optarg, "path")) qo.sort = IDX_SORT_PATH;
			else {
				die_msg("--sort %s: use score, name, size, mtime or path", optarg);
				free(opts);
				free(words);
				return 2;
			}
			break;
		case 'n': {
			char *end;
			long v = strtol(optarg, &end, 10);
			if (*end || v < 0) {
				die_msg("--limit %s: not a count", optarg);
				free(opts);
				free(words);
				return 2;
			}
			r.limit = v;
			break;
		}
		case 'T': {
			char *end;
			timeout = strtod(optarg, &end);
			if (*end || timeout < 0) {
				die_msg("--timeout %s: not a number of seconds", optarg);
				free(opts);
				free(words);
				return 2;
			}
			break;
		}
		case 'h':
			fputs(usage_text, stdout);
			free(opts);
			free(words);
			return 0;
		default:
			free(opts);
			free(words);
			return 2;
		}
	}
	free(opts);
	argc = nwords;
	argv = words;
	optind = 0;
	/* leading arguments naming existing paths are PATHs; the rest is the query */
	int first_q = optind;
	while (first_q < argc - 1 && looks_like_path(argv[first_q]))
		first_q++;
	if (first_q >= argc) {
		die_msg("find: no query (try: metafs find --help)");
		free(words);
		return 2;
	}
	size_t qlen = 0;
	for (int i = first_q; i < argc; i++)
		qlen += strlen(argv[i]) + 1;
	char *query = malloc(qlen + 1);
	if (!query) {
		free(words);
		return 1;
	}
	query[0] = '\0';
	for (int i = first_q; i < argc; i++) {
		if (i > first_q)
			strcat(query, " ");
		strcat(query, argv[i]);
	}

	int npaths = first_q - optind;
	struct target *targets = calloc((size_t)(npaths ? npaths : 1), sizeof *targets);
	const char **under = calloc((size_t)npaths + 2, sizeof *under);
	int rc = 1;
	struct idx_backend *be = NULL;
	struct q_node *q = NULL;
	if (!targets || !under)
		goto out;
	if (npaths == 0) {
		if (target_of(".", &targets[0]))
			goto out;
		npaths = 1;
	} else {
		for (int i = 0; i < npaths; i++)
			if (target_of(argv[optind + i], &targets[i]))
				goto out;
	}
	for (int i = 1; i < npaths; i++)
		if (strcmp(targets[i].vol, targets[0].vol) || strcmp(targets[i].mnt, targets[0].mnt)) {
			die_msg("find: the paths are on different volumes or mounts");
			goto out;
		}
	int nunder = 0;
	for (int i = 0; i < npaths; i++)
		if (targets[i].sub[0] && strcmp(targets[i].sub, "/"))
			under[nunder++] = targets[i].sub;
	bool whole = false;
	for (int i = 0; i < npaths; i++)
		whole |= !targets[i].sub[0] || !strcmp(targets[i].sub, "/");
	qo.under = whole ? NULL : under;

	char ipath[PATH_MAX], err[1024] = "";
	indexer_default_path(targets[0].vol, ipath, sizeof ipath);
	int epos = 0;
	if (q_parse(query, &q, err, sizeof err, &epos)) {
		die_msg("find: %s", err);
		rc = 2;
		goto out;
	}
	int orc = idx_sqlite_open(ipath, IDX_OPEN_READONLY, &be, err, sizeof err);
	/* a volume just mounted may still be building its first index */
	for (int64_t until = mfs_now_ns() + (int64_t)(timeout * 1e9); consistent && orc == -ENOENT && mfs_now_ns() < until;) {
		mfs_sleep_us(50000);
		orc = idx_sqlite_open(ipath, IDX_OPEN_READONLY, &be, err, sizeof err);
	}
	if (orc == -EACCES) {
		die_msg("cannot read the search index of %s: permission denied (metafs find reads %s, "
			"inside the volume directory)", targets[0].vol, ipath);
		goto out;
	} else if (orc == -ENOENT) {
		die_msg("%s has no search index yet (mount it, or run: metafs reindex %s)", targets[0].vol,
			targets[0].vol);
		goto out;
	} else if (orc) {
		die_msg("the search index of %s is unusable: %s (run: metafs reindex %s)", targets[0].vol, err,
			targets[0].vol);
		goto out;
	}
	/* wait first: a field set just before the query must be known */
	if (consistent && wait_consistent(be, targets[0].vol, timeout))
		goto out;
	if (q_resolve(q, mfs_now_ns(), has_attr_cb, be, err, sizeof err, &epos)) {
		die_msg("find: %s", err);
		rc = 2;
		goto out;
	}

	r.be = be;
	r.t = &targets[0];
	r.root = geteuid() == 0;
	r.who.uid = geteuid();
	r.who.gid = getegid();
	r.who.ngroups = getgroups((int)MFS_ARRAY_LEN(r.who.groups), r.who.groups);
	if (r.who.ngroups < 0)
		r.who.ngroups = 0;
	int qrc = be->ops->query(be, q, &qo, on_hit, &r);
	fflush(stdout);
	if (qrc == -EPIPE) {
		rc = 0;
		goto out;
	}
	if (qrc) {
		die_msg("find: the search failed: %s", strerror(-qrc));
		goto out;
	}
	if (r.count_only)
		printf("%ld\n", r.shown);
	rc = 0;
out:
	q_free(q);
	if (be)
		be->ops->close(be);
	free(targets);
	free(under);
	free(query);
	free(words);
	return rc;
}
