/* SPDX-License-Identifier: Apache-2.0 */
/* One `metafs find` search: parse, wait for --consistent, run against the
 * index, keep what the caller could reach by walking the tree, print. */
#include "search.h"
#include "tools.h"
#include "common.h"

#include <errno.h>
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

/* ---------------------------------------------------------------- permissions */

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

static bool cancelled(const struct find_request *rq)
{
	return rq->cancel && __atomic_load_n(rq->cancel, __ATOMIC_RELAXED);
}

struct run {
	struct idx_backend *be;
	const struct find_request *rq;
	const struct who *who;
	FILE *out;
	long shown;
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
	const struct find_request *rq = r->rq;
	FILE *out = r->out;
	if (rq->limit >= 0 && r->shown >= rq->limit)
		return 1;
	if (cancelled(rq))
		return -ECANCELED;
	if (!r->who->root) {
		/* list the directory (read + search), and reach it */
		struct idx_hit dir;
		if (r->be->ops->get(r->be, h->parent, &dir) != 0 || !may(r->who, &dir, 5) ||
		    !reachable(r->be, r->who, &r->memo, h->parent, 0))
			return 0;
	}
	r->shown++;
	if (rq->count_only)
		return rq->limit >= 0 && r->shown >= rq->limit ? 1 : 0;
	/* a path through the mount when asked through one */
	const char *prefix = rq->prefix ? rq->prefix : "";
	size_t plen = strlen(prefix);
	if (plen == 1 && prefix[0] == '/')
		plen = 0;
	if (rq->out == OUT_PATHS) {
		fwrite(prefix, 1, plen, out);
		fwrite(h->path, 1, h->path_len, out);
		fputc(rq->nul ? '\0' : '\n', out);
	} else if (rq->out == OUT_LONG) {
		char mode[11], user[64], group[64], when[32];
		mode_string(h->mode, mode);
		user_name(h->uid, user, sizeof user);
		group_name(h->gid, group, sizeof group);
		time_t t = (time_t)(h->mtime / 1000000000LL);
		struct tm tm;
		localtime_r(&t, &tm);
		strftime(when, sizeof when, "%Y-%m-%d %H:%M", &tm);
		fprintf(out, "%s %3u %-8s %-8s %12llu %s ", mode, h->nlink, user, group, (unsigned long long)h->size, when);
		fwrite(prefix, 1, plen, out);
		fwrite(h->path, 1, h->path_len, out);
		fputc(rq->nul ? '\0' : '\n', out);
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
		if (s) {
			fputs(s, out);
			fputc('\n', out);
		}
		free(s);
		json_decref(o);
	}
	if (ferror(out))
		return -EPIPE;
	return rq->limit >= 0 && r->shown >= rq->limit ? 1 : 0;
}

static bool has_attr_cb(void *arg, const char *name)
{
	struct idx_backend *be = arg;
	return be->ops->has_attr(be, name);
}

/* The volume itself, opened read-only when first needed: its lineage
 * records for derived-from: on a backend without the graph, its changelog
 * for --consistent on a cluster. */
struct records {
	const char *vol;
	struct mfs_volume *v;
	bool opened, failed; /* failed: said once, not tried again */
};

/* The volume, opened read-only the first time it is needed. */
static struct mfs_volume *records_volume(struct records *r)
{
	char e[512];
	if (!r->v && !r->failed) {
		if (mfs_open(r->vol, STORE_OPEN_READONLY, &r->v, e, sizeof e)) {
			log_error("find: cannot open %s: %s", r->vol, e);
			r->v = NULL;
			r->failed = true;
			return NULL;
		}
		r->opened = true;
	}
	return r->v;
}

/* On a cluster, whose changelog ids have gaps: true when every record now
 * in the changelog up to last has been applied, though the cursor still
 * waits at an older id that no commit has filled (yet: it may be a
 * transaction still running, or an id a node never used). */
static bool applied_past_cursor(struct idx_backend *be, struct records *recs, uint64_t last)
{
	struct idx_past p;
	if (!be->ops->past || be->ops->past(be, &p) || p.seen < last || p.seen <= p.cursor)
		return false;
	struct mfs_volume *v = records_volume(recs);
	uint64_t n;
	if (!v || !v->store->ops->changelog_count || v->store->ops->changelog_count(v->store, p.cursor, p.seen, &n))
		return false;
	return n == p.done;
}

/* Waits until the index has applied everything the volume had committed
 * when the search started. */
static int wait_consistent(struct idx_backend *be, const struct find_request *rq, struct records *recs,
			   committed_fn committed, void *carg, char *err, size_t errlen)
{
	double timeout = rq->timeout;
	uint64_t last, have = 0;
	if (committed(carg, &last, err, errlen))
		return -1;
	int64_t deadline = mfs_now_ns() + (int64_t)(timeout * 1e9), next_count = 0;
	for (;;) {
		if (be->ops->cursor(be, &have) == 0 && have >= last)
			return 0;
		/* the count costs the database a range read: 20 times a second
		 * at most */
		if (mfs_now_ns() >= next_count) {
			if (applied_past_cursor(be, recs, last))
				return 0;
			next_count = mfs_now_ns() + 50000000;
		}
		if (mfs_now_ns() > deadline || cancelled(rq))
			break;
		mfs_sleep_us(10000);
	}
	snprintf(err, errlen,
		 "the index of %s has applied changes up to %llu of %llu and did not catch up in %g s "
		 "(is the volume mounted with its indexer, or `metafs indexer` running?)",
		 recs->vol, (unsigned long long)have, (unsigned long long)last, timeout);
	return -1;
}

static int descendants(void *arg, uint64_t ino, struct u64_vec *out)
{
	struct records *r = arg;
	if (!records_volume(r))
		return -EIO;
	struct store_txn *t;
	int rc = r->v->store->ops->begin_read(r->v->store, &t);
	if (rc)
		return rc;
	rc = prov_descendants(t, ino, out);
	r->v->store->ops->abort(t);
	return rc;
}

int search_run(const struct find_request *rq, const struct who *w, const char *vol, struct mfs_volume *v,
	       committed_fn committed, void *carg, FILE *out, char *err, size_t errlen)
{
	struct records recs = { vol, v, false, false };
	char ipath[PATH_MAX];
	indexer_default_path(vol, ipath, sizeof ipath);
	struct q_node *q = NULL;
	struct idx_backend *be = NULL;
	int epos = 0, status = 1;
	char e[1024] = "";
	if (q_parse(rq->query, &q, e, sizeof e, &epos)) {
		snprintf(err, errlen, "find: %s", e);
		return 2;
	}
	int orc = idx_open(ipath, IDX_OPEN_READONLY, &be, e, sizeof e);
	/* a volume just mounted may still be building its first index */
	for (int64_t until = mfs_now_ns() + (int64_t)(rq->timeout * 1e9);
	     rq->consistent && orc == -ENOENT && mfs_now_ns() < until && !cancelled(rq);) {
		mfs_sleep_us(50000);
		orc = idx_open(ipath, IDX_OPEN_READONLY, &be, e, sizeof e);
	}
	if (orc == -EACCES && idx_is_es(ipath)) {
		snprintf(err, errlen, "the search cluster of %s refused access: %s", vol, e);
		goto out;
	} else if (orc == -EACCES) {
		snprintf(err, errlen,
			 "cannot read the search index of %s: permission denied (metafs find reads %s, inside the "
			 "volume directory, or asks the daemon of a mount: search through a path inside the mount)",
			 vol, idx_locator_file(ipath));
		goto out;
	} else if (orc == -ENOENT) {
		snprintf(err, errlen, "%s has no search index yet (mount it, or run: metafs reindex %s)", vol, vol);
		goto out;
	} else if (orc) {
		snprintf(err, errlen, "the search index of %s is unusable: %s (run: metafs reindex %s)", vol, e, vol);
		goto out;
	}
	/* wait first: a field set just before the query must be known */
	if (rq->consistent && wait_consistent(be, rq, &recs, committed, carg, err, errlen))
		goto out;
	if (rq->consistent && be->ops->sync && be->ops->sync(be)) {
		snprintf(err, errlen, "find: the search cluster did not make the latest changes visible");
		goto out;
	}
	if (q_resolve(q, mfs_now_ns(), has_attr_cb, be, e, sizeof e, &epos)) {
		snprintf(err, errlen, "find: %s", e);
		status = 2;
		goto out;
	}
	struct run r = { .be = be, .rq = rq, .who = w, .out = out };
	struct idx_query_opts qo = { .sort = rq->sort, .reverse = rq->reverse, .under = rq->under,
				     .descendants = descendants, .descendants_arg = &recs };
	int qrc = be->ops->query(be, q, &qo, on_hit, &r);
	fflush(out);
	if (qrc == -EPIPE || ferror(out)) {
		status = 0; /* the reader went away: not an error of the search */
		goto out;
	}
	if (qrc == -ECANCELED) {
		snprintf(err, errlen, "find: the search was cut short: the volume is being unmounted");
		goto out;
	}
	if (qrc) {
		snprintf(err, errlen, "find: the search failed: %s", strerror(-qrc));
		goto out;
	}
	if (rq->count_only)
		fprintf(out, "%ld\n", r.shown);
	fflush(out);
	status = 0;
out:
	q_free(q);
	if (be)
		be->ops->close(be);
	if (recs.opened)
		mfs_close(recs.v);
	return status;
}
