/* SPDX-License-Identifier: Apache-2.0 */
/*
 * fsck: checks every invariant the namespace keeps, through the store
 * interface, and repairs what can be repaired without guessing.
 *
 * Repairs that change what a user sees (a dangling entry removed, an
 * unreachable inode linked into /lost+found) go through the changelog like
 * any other change. Damage that cannot be undone (a chunk whose checksum
 * fails, a gap in the changelog) is reported and left as it is.
 */
#include "metadata.h"
#include "blockstore.h"
#include "common.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#define OPS(t) ((t)->store->ops)

struct fino {
	uint64_t ino;
	uint32_t mode, nlink, flags;
	uint64_t parent, size;
	uint32_t refs; /* names pointing here */
	uint32_t subdirs; /* directories: entries that are directories */
	uint64_t named_in; /* directories: the directory of its (first) name */
	bool orphan_key, has_inline, decoded;
	bool freed; /* reclaimed by a repair */
};

struct fsck {
	struct mfs_volume *v;
	const struct fsck_opts *o;
	struct fsck_result *r;
	struct fino *in;
	size_t n, cap;
	uint64_t lost_found;
	int rc;
};

static void issue(struct fsck *f, const char *kind, uint64_t ino, bool repaired, const char *fmt, ...)
	__attribute__((format(printf, 5, 6)));

static void issue(struct fsck *f, const char *kind, uint64_t ino, bool repaired, const char *fmt, ...)
{
	char detail[512];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(detail, sizeof detail, fmt, ap);
	va_end(ap);
	f->r->problems++;
	if (repaired)
		f->r->repaired++;
	if (f->o->report)
		f->o->report(f->o->arg, kind, ino, detail, repaired);
}

static void progress(struct fsck *f, const char *phase, uint64_t done, uint64_t total)
{
	if (f->o->progress && (done % 4096 == 0 || done == total))
		f->o->progress(f->o->arg, phase, done, total);
}

static struct fino *find(struct fsck *f, uint64_t ino)
{
	size_t lo = 0, hi = f->n;
	while (lo < hi) {
		size_t mid = (lo + hi) / 2;
		if (f->in[mid].ino < ino)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo < f->n && f->in[lo].ino == ino ? &f->in[lo] : NULL;
}

/* ---------------------------------------------------------------- repairs */

struct fix {
	struct fsck *f;
	uint64_t ino, parent, cookie, value;
	const char *name;
	size_t name_len;
	uint32_t type;
	bool chunk;
};

static int run_fix(struct fsck *f, int (*fn)(struct store_txn *, void *), struct fix *x)
{
	int rc = ns_txn_run(f->v, fn, x);
	if (rc) {
		log_error("fsck: a repair failed: %s", strerror(-rc));
		f->rc = rc;
	}
	return rc;
}

static struct cl_rec fsck_rec(uint32_t op, const struct inode_rec *in)
{
	/* repairs are made by fsck, not by a process on a mount: pid 0 */
	return (struct cl_rec){ .time_ns = mfs_now_ns(), .op = op, .ino = in->ino, .version = in->version,
				.mode = in->mode, .nlink = in->nlink, .size = in->size };
}

static int fix_drop_entry(struct store_txn *t, void *arg)
{
	struct fix *x = arg;
	struct inode_rec dir;
	int rc = OPS(t)->inode_get(t, x->parent, &dir, true);
	if (rc && rc != -ENOENT)
		return rc;
	char name[MFS_NAME_MAX + 1];
	memcpy(name, x->name, x->name_len);
	name[x->name_len] = '\0';
	struct dirent_rec d = { x->ino, x->type, x->cookie };
	if ((rc = OPS(t)->dirent_del(t, x->parent, name, x->name_len, &d)))
		return rc;
	if (dir.ino != x->parent || !S_ISDIR(dir.mode))
		return 0; /* no directory to update or log against */
	dir.mtime = dir.ctime = mfs_now();
	dir.version++;
	if ((rc = OPS(t)->inode_put(t, &dir)))
		return rc;
	struct inode_rec gone = { .ino = x->ino, .mode = x->type };
	struct cl_rec cl = fsck_rec(S_ISDIR(x->type) ? CL_RMDIR : CL_UNLINK, &gone);
	cl.parent = x->parent;
	cl.name = name;
	cl.name_len = (uint32_t)x->name_len;
	return OPS(t)->changelog_append(t, &cl);
}

static int fix_entry_type(struct store_txn *t, void *arg)
{
	struct fix *x = arg;
	char name[MFS_NAME_MAX + 1];
	memcpy(name, x->name, x->name_len);
	name[x->name_len] = '\0';
	struct dirent_rec d = { x->ino, x->type, x->cookie };
	return OPS(t)->dirent_put(t, x->parent, name, x->name_len, &d);
}

/* value: new link count; parent: new parent (directories), 0 to keep */
static int fix_inode(struct store_txn *t, void *arg)
{
	struct fix *x = arg;
	struct inode_rec in;
	int rc = OPS(t)->inode_get(t, x->ino, &in, true);
	if (rc)
		return rc;
	in.nlink = (uint32_t)x->value;
	if (x->parent)
		in.parent = x->parent;
	in.ctime = mfs_now();
	in.version++;
	if ((rc = OPS(t)->inode_put(t, &in)))
		return rc;
	if (in.nlink == 0 && (rc = OPS(t)->orphan_put(t, in.ino)))
		return rc;
	/* no change without its record: the index learns of the repair */
	struct cl_rec cl = fsck_rec(CL_SETATTR, &in);
	cl.fields = MFS_SET_CTIME;
	return OPS(t)->changelog_append(t, &cl);
}

static int fix_del_inode(struct store_txn *t, void *arg)
{
	struct fix *x = arg;
	return OPS(t)->inode_del(t, x->ino);
}

static int fix_del_orphan_key(struct store_txn *t, void *arg)
{
	struct fix *x = arg;
	return OPS(t)->orphan_del(t, x->ino);
}

static int fix_del_data(struct store_txn *t, void *arg)
{
	struct fix *x = arg;
	return x->chunk ? OPS(t)->chunk_del(t, x->ino, x->value) : OPS(t)->inline_del(t, x->ino);
}

static int fix_del_xattr(struct store_txn *t, void *arg)
{
	struct fix *x = arg;
	char name[MFS_XATTR_NAME_MAX + 1];
	size_t n = x->name_len > MFS_XATTR_NAME_MAX ? MFS_XATTR_NAME_MAX : x->name_len;
	memcpy(name, x->name, n);
	name[n] = '\0';
	return OPS(t)->xattr_del(t, x->ino, name);
}

/* Links an inode without a name into /lost+found as "#INO". */
static int fix_to_lost_found(struct store_txn *t, void *arg)
{
	struct fix *x = arg;
	struct inode_rec lf, in;
	int rc = OPS(t)->inode_get(t, x->parent, &lf, true);
	if (!rc)
		rc = OPS(t)->inode_get(t, x->ino, &in, true);
	if (rc)
		return rc;
	char name[32];
	int len = snprintf(name, sizeof name, "#%llu", (unsigned long long)x->ino);
	struct dirent_rec d = { in.ino, in.mode & S_IFMT, lf.next_cookie++ };
	if ((rc = OPS(t)->dirent_put(t, lf.ino, name, (size_t)len, &d)))
		return rc;
	struct timespec now = mfs_now();
	if (S_ISDIR(in.mode)) {
		in.parent = lf.ino;
		lf.nlink++;
	} else {
		in.nlink = 1;
	}
	in.ctime = now;
	in.version++;
	lf.mtime = lf.ctime = now;
	lf.version++;
	if ((rc = OPS(t)->inode_put(t, &in)) || (rc = OPS(t)->inode_put(t, &lf)) ||
	    (rc = OPS(t)->orphan_del(t, in.ino)))
		return rc;
	struct cl_rec cl = fsck_rec(CL_LINK, &in);
	cl.parent = lf.ino;
	cl.name = name;
	cl.name_len = (uint32_t)len;
	return OPS(t)->changelog_append(t, &cl);
}

static uint64_t lost_found(struct fsck *f)
{
	if (f->lost_found)
		return f->lost_found;
	struct inode_rec in;
	int rc = ns_lookup(f->v, MFS_ROOT_INO, "lost+found", &in);
	if (rc == -ENOENT) {
		struct mfs_ctx c = { 0, 0, 0 };
		rc = ns_mkdir(f->v, &c, MFS_ROOT_INO, "lost+found", 0700, &in);
	}
	if (rc || !S_ISDIR(in.mode)) {
		log_error("fsck: cannot make /lost+found: %s", rc ? strerror(-rc) : "not a directory");
		return 0;
	}
	return f->lost_found = in.ino;
}

/* ---------------------------------------------------------------- scans */

static int on_inode(void *arg, uint64_t ino, const struct inode_rec *in)
{
	struct fsck *f = arg;
	if (!in) {
		bool rep = f->o->repair;
		if (rep) {
			struct fix x = { .f = f, .ino = ino };
			rep = run_fix(f, fix_del_inode, &x) == 0;
		}
		issue(f, "bad-inode", ino, rep, "inode record does not decode%s", rep ? "; removed" : "");
		return 0;
	}
	if (mfs_array_reserve(&f->in, &f->cap, f->n, sizeof *f->in))
		return -ENOMEM;
	f->in[f->n++] = (struct fino){ .ino = ino, .mode = in->mode, .nlink = in->nlink, .flags = in->flags,
				       .parent = in->parent, .size = in->size, .decoded = true };
	f->r->inodes++;
	if (S_ISDIR(in->mode))
		f->r->directories++;
	else if (S_ISREG(in->mode))
		f->r->files++;
	progress(f, "inodes", f->r->inodes, 0);
	return 0;
}

static int on_orphan(void *arg, uint64_t ino)
{
	struct fsck *f = arg;
	struct fino *x = find(f, ino);
	if (x) {
		x->orphan_key = true;
		return 0;
	}
	bool rep = f->o->repair;
	if (rep) {
		struct fix fx = { .f = f, .ino = ino };
		rep = run_fix(f, fix_del_orphan_key, &fx) == 0;
	}
	issue(f, "stale-orphan", ino, rep, "orphan mark for an inode that does not exist");
	return 0;
}

static bool valid_name(const char *name, size_t len)
{
	if (len == 0 || len > MFS_NAME_MAX)
		return false;
	if ((len == 1 && name[0] == '.') || (len == 2 && name[0] == '.' && name[1] == '.'))
		return false;
	return !memchr(name, '/', len) && !memchr(name, '\0', len);
}

static int on_dirent(void *arg, uint64_t parent, const char *name, size_t len, const struct dirent_rec *d)
{
	struct fsck *f = arg;
	f->r->entries++;
	progress(f, "entries", f->r->entries, 0);
	struct fix x = { .f = f, .parent = parent, .name = name, .name_len = len,
			 .ino = d ? d->ino : 0, .cookie = d ? d->cookie : 0, .type = d ? d->type : 0 };
	bool rep = f->o->repair;
	if (!d) {
		rep = rep && run_fix(f, fix_drop_entry, &x) == 0;
		issue(f, "bad-entry", parent, rep, "an entry in directory %llu does not decode", (unsigned long long)parent);
		return 0;
	}
	struct fino *p = find(f, parent), *c = find(f, d->ino);
	if (!p || !S_ISDIR(p->mode)) {
		rep = rep && run_fix(f, fix_drop_entry, &x) == 0;
		issue(f, "entry-without-directory", d->ino, rep, "entry '%.*s' in %llu, which is %s", (int)len, name,
		      (unsigned long long)parent, p ? "not a directory" : "missing");
		return 0;
	}
	if (!c) {
		rep = rep && run_fix(f, fix_drop_entry, &x) == 0;
		issue(f, "dangling-entry", d->ino, rep, "entry '%.*s' in directory %llu names missing inode %llu%s",
		      (int)len, name, (unsigned long long)parent, (unsigned long long)d->ino, rep ? "; removed" : "");
		return 0;
	}
	if (!valid_name(name, len))
		issue(f, "bad-name", d->ino, false, "entry in directory %llu has an invalid name of %zu bytes",
		      (unsigned long long)parent, len);
	if ((d->type & S_IFMT) != (c->mode & S_IFMT)) {
		x.type = c->mode & S_IFMT;
		rep = rep && run_fix(f, fix_entry_type, &x) == 0;
		issue(f, "entry-type", d->ino, rep, "entry '%.*s' records the wrong file type", (int)len, name);
	}
	if (S_ISDIR(c->mode) && c->refs > 0) {
		/* a directory has one name; drop the extra ones */
		rep = f->o->repair && run_fix(f, fix_drop_entry, &x) == 0;
		issue(f, "directory-hard-link", d->ino, rep, "directory %llu has a second name '%.*s'",
		      (unsigned long long)d->ino, (int)len, name);
		return 0;
	}
	c->refs++;
	if (S_ISDIR(c->mode)) {
		p->subdirs++;
		c->named_in = parent;
	}
	return 0;
}

static void on_store_issue(void *arg, uint64_t ino, const char *what, bool repaired)
{
	issue(arg, "index", ino, repaired, "%s", what);
}

static void check_links(struct fsck *f)
{
	for (size_t i = 0; i < f->n && !f->rc; i++) {
		struct fino *x = &f->in[i];
		progress(f, "links", i + 1, f->n);
		bool rep = f->o->repair;
		bool is_dir = S_ISDIR(x->mode);
		bool root = x->ino == MFS_ROOT_INO;
		if (root && !is_dir) {
			issue(f, "root", x->ino, false, "the root inode is not a directory");
			continue;
		}
		if (x->refs == 0 && !root) {
			if (x->nlink == 0) {
				if (x->orphan_key)
					continue; /* unlinked while in use: freed at next mount */
				rep = rep && ns_reclaim(f->v, x->ino) == 0;
				x->freed = rep;
				issue(f, "unreferenced-inode", x->ino, rep, "inode with no name and no orphan mark%s",
				      rep ? "; freed" : "");
				continue;
			}
			uint64_t lf = rep ? lost_found(f) : 0;
			if (lf && lf != x->ino) {
				struct fix fx = { .f = f, .ino = x->ino, .parent = lf };
				rep = run_fix(f, fix_to_lost_found, &fx) == 0;
				if (rep && is_dir) {
					x->named_in = x->parent = lf;
					struct fino *l = find(f, lf);
					if (l) { /* keep its own check in step */
						l->subdirs++;
						l->nlink++;
					}
				}
			} else {
				rep = false;
			}
			issue(f, "unreachable-inode", x->ino, rep, "inode with %u links but no name%s", x->nlink,
			      rep ? "; linked into /lost+found" : "");
			if (!rep || !is_dir)
				continue;
		}
		uint32_t want = is_dir ? 2 + x->subdirs : x->refs;
		uint64_t want_parent = is_dir && !root ? x->named_in : 0;
		bool bad_parent = want_parent && x->parent != want_parent;
		if (root && x->parent != MFS_ROOT_INO) {
			bad_parent = true;
			want_parent = MFS_ROOT_INO;
		}
		if (x->nlink != want || bad_parent) {
			struct fix fx = { .f = f, .ino = x->ino, .value = want, .parent = bad_parent ? want_parent : 0 };
			rep = rep && run_fix(f, fix_inode, &fx) == 0;
			if (rep && bad_parent)
				x->parent = want_parent;
			if (x->nlink != want)
				issue(f, "link-count", x->ino, rep, "link count %u, should be %u", x->nlink, want);
			if (bad_parent)
				issue(f, "parent", x->ino, rep, "directory's parent recorded as %llu, named in %llu",
				      (unsigned long long)x->parent, (unsigned long long)want_parent);
		}
		if (x->orphan_key && want > 0) {
			struct fix fx = { .f = f, .ino = x->ino };
			rep = f->o->repair && run_fix(f, fix_del_orphan_key, &fx) == 0;
			issue(f, "stale-orphan", x->ino, rep, "orphan mark on an inode that has a name");
		}
	}
}

/* Every directory must lead up to the root through the entries naming it
 * (a cycle of directories cut off from the root cannot be seen otherwise). */
static void check_tree(struct fsck *f)
{
	for (size_t i = 0; i < f->n; i++) {
		struct fino *x = &f->in[i];
		if (!S_ISDIR(x->mode) || x->refs == 0)
			continue;
		uint64_t cur = x->ino;
		size_t steps = 0;
		while (cur != MFS_ROOT_INO && steps <= f->r->directories) {
			struct fino *p = find(f, cur);
			if (!p || !p->named_in)
				break;
			cur = p->named_in;
			steps++;
		}
		if (cur != MFS_ROOT_INO)
			issue(f, "detached-directory", x->ino, false,
			      "directory does not lead up to the root (a cycle or a missing parent)");
	}
}

static int on_data(void *arg, uint64_t ino, bool chunk, uint64_t idx, const void *val, size_t len)
{
	struct fsck *f = arg;
	f->r->data_records++;
	progress(f, "data", f->r->data_records, 0);
	struct fino *x = find(f, ino);
	const char *why = NULL;
	if (!x)
		why = "data of a missing inode";
	else if (!chunk && (x->flags & INODE_F_CHUNKED))
		why = "inline data of a chunked file";
	else if (!chunk && !S_ISREG(x->mode) && !S_ISLNK(x->mode))
		why = "inline data of an inode that holds none";
	else if (chunk && !(x->flags & INODE_F_CHUNKED))
		why = "a chunk of a file stored inline";
	else if (chunk && idx * f->v->sb.chunk_size >= x->size)
		why = "a chunk past the end of the file";
	if (why) {
		bool rep = f->o->repair;
		if (rep) {
			struct fix fx = { .f = f, .ino = ino, .chunk = chunk, .value = idx };
			rep = run_fix(f, fix_del_data, &fx) == 0;
		}
		issue(f, "orphan-data", ino, rep, "%s (%s %llu)%s", why, chunk ? "chunk" : "inline",
		      (unsigned long long)idx, rep ? "; removed" : "");
		return 0;
	}
	if (!chunk)
		x->has_inline = true;
	const void *pl;
	size_t plen;
	int hdr = bs_payload_offset(val, len);
	if (hdr < 0 || (f->o->scrub && bs_unframe(val, len, &pl, &plen) != 0))
		issue(f, "checksum", ino, false, "%s %llu fails its checksum: its bytes read as EIO",
		      chunk ? "chunk" : "inline data", (unsigned long long)idx);
	else if (f->o->scrub)
		f->r->scrubbed_bytes += len - (size_t)hdr;
	return 0;
}

static int on_xattr(void *arg, uint64_t ino, const char *name, size_t len, const void *value, size_t vlen)
{
	struct fsck *f = arg;
	f->r->xattrs++;
	if (find(f, ino))
		return 0;
	bool rep = f->o->repair;
	if (rep) {
		struct fix fx = { .f = f, .ino = ino, .name = name, .name_len = len };
		rep = run_fix(f, fix_del_xattr, &fx) == 0;
	}
	issue(f, "orphan-xattr", ino, rep, "xattr '%.*s' of a missing inode%s", (int)len, name, rep ? "; removed" : "");
	return 0;
}

static void check_data_presence(struct fsck *f)
{
	for (size_t i = 0; i < f->n; i++) {
		struct fino *x = &f->in[i];
		if (x->freed || x->has_inline || (x->flags & INODE_F_CHUNKED))
			continue;
		/* a small regular file may be all hole (truncated up from
		 * empty) and store nothing; a symlink always has its target */
		if (S_ISLNK(x->mode))
			issue(f, "missing-data", x->ino, false, "symlink without its target");
	}
}

struct log_walk {
	struct fsck *f;
	uint64_t expect;
	bool dense; /* the store promises ids without gaps (the embedded one) */
};

static int on_log(void *arg, const struct cl_rec *r)
{
	struct log_walk *w = arg;
	if (w->dense && w->expect && r->seq != w->expect)
		issue(w->f, "changelog-gap", 0, false, "changelog jumps from %llu to %llu",
		      (unsigned long long)(w->expect - 1), (unsigned long long)r->seq);
	w->expect = r->seq + 1;
	w->f->r->changelog_records++;
	progress(w->f, "changelog", w->f->r->changelog_records, 0);
	return 0;
}

int mfs_fsck(struct mfs_volume *v, const struct fsck_opts *o, struct fsck_result *r)
{
	memset(r, 0, sizeof *r);
	struct fsck f = { .v = v, .o = o, .r = r };
	struct store *s = v->store;
	if (o->repair && v->readonly)
		return -EROFS;
	int rc = s->ops->inode_scan(s, on_inode, &f);
	if (!rc)
		rc = s->ops->orphan_list(s, on_orphan, &f);
	if (!rc && !find(&f, MFS_ROOT_INO))
		issue(&f, "root", MFS_ROOT_INO, false, "the root directory is missing");
	if (!rc)
		rc = s->ops->dirent_scan(s, on_dirent, &f);
	if (!rc)
		rc = s->ops->check_indexes(s, o->repair, on_store_issue, &f);
	if (!rc) {
		check_links(&f);
		check_tree(&f);
		rc = s->ops->data_scan(s, on_data, &f);
	}
	if (!rc) {
		check_data_presence(&f);
		rc = s->ops->xattr_scan(s, on_xattr, &f);
	}
	if (!rc) {
		struct log_walk w = { &f, 0, !s->ops->changelog_gaps };
		uint64_t first, last;
		rc = s->ops->changelog_bounds(s, &first, &last);
		if (!rc)
			rc = s->ops->changelog_read(s, first, on_log, &w);
		if (rc == -EIO) {
			issue(&f, "changelog-record", 0, false, "a changelog record after %llu does not decode",
			      (unsigned long long)(w.expect ? w.expect - 1 : first));
			rc = 0;
		}
		if (!rc && w.dense && last && r->changelog_records != last - first + 1)
			issue(&f, "changelog-gap", 0, false, "%llu records between %llu and %llu",
			      (unsigned long long)r->changelog_records, (unsigned long long)first,
			      (unsigned long long)last);
	}
	if (!rc && o->repair)
		rc = ns_sync(v);
	free(f.in);
	return rc ? rc : f.rc;
}
