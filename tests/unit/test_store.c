/* SPDX-License-Identifier: Apache-2.0 */
/* Store-level tests of the RocksDB store: transactions, locks, listing
 * order, the changelog's gap-free commit order, read-only views. */
#include "harness.h"
#include "common.h"

#include <pthread.h>
#include <sys/stat.h>

static struct inode_rec mk_inode(uint64_t ino)
{
	struct inode_rec in = { .ino = ino, .mode = S_IFREG | 0644, .nlink = 1, .version = 1 };
	in.mtime.tv_sec = 1234;
	in.mtime.tv_nsec = 567890123;
	return in;
}

static void test_commit_abort(struct store *s)
{
	const struct store_ops *o = s->ops;
	struct store_txn *t;
	struct inode_rec in = mk_inode(1000), got;
	o->begin(s, &t);
	CHECK_RC(o->inode_put(t, &in), 0, "put in a transaction");
	CHECK_RC(o->inode_get(t, 1000, &got, false), 0, "a transaction reads its own write");
	o->abort(t);
	o->begin(s, &t);
	CHECK_RC(o->inode_get(t, 1000, &got, false), -ENOENT, "an aborted write leaves no trace");
	CHECK_RC(o->inode_put(t, &in), 0, "put again");
	CHECK_RC(o->commit(t), 0, "commit");
	o->begin(s, &t);
	CHECK_RC(o->inode_get(t, 1000, &got, false), 0, "a committed write is visible");
	CHECK(got.mtime.tv_nsec == 567890123 && got.mode == in.mode && got.ino == 1000,
	      "inode fields round-trip with nanoseconds");
	o->abort(t);
}

static void test_locking(struct store *s)
{
	const struct store_ops *o = s->ops;
	struct store_txn *a, *b;
	struct inode_rec got;
	o->begin(s, &a);
	o->begin(s, &b);
	CHECK_RC(o->inode_get(a, 1000, &got, true), 0, "first locking read");
	CHECK_RC(o->inode_get(b, 1000, &got, false), 0, "a plain read does not wait for the lock");
	CHECK_RC(o->inode_get(b, 1000, &got, true), MFS_ERETRY, "a second locking read is told to retry");
	o->abort(a);
	CHECK_RC(o->inode_get(b, 1000, &got, true), 0, "the lock is free after the first aborts");
	o->abort(b);
}

struct dl {
	char names[64][32];
	uint64_t cookies[64];
	int n;
};

static int dl_cb(void *arg, const char *name, size_t len, const struct dirent_rec *d)
{
	struct dl *l = arg;
	snprintf(l->names[l->n], sizeof l->names[0], "%.*s", (int)len, name);
	l->cookies[l->n++] = d->cookie;
	return 0;
}

static void test_dirents(struct store *s)
{
	const struct store_ops *o = s->ops;
	struct store_txn *t;
	o->begin(s, &t);
	const char *names[] = { "zeta", "alpha", "mid" };
	for (int i = 0; i < 3; i++) {
		struct dirent_rec d = { .ino = 10 + i, .type = S_IFREG, .cookie = 3 + i };
		o->dirent_put(t, 500, names[i], strlen(names[i]), &d);
	}
	struct dirent_rec other = { .ino = 99, .type = S_IFREG, .cookie = 3 };
	o->dirent_put(t, 501, "x", 1, &other);
	CHECK_RC(o->commit(t), 0, "commit entries");
	o->begin(s, &t);
	struct dl l = { .n = 0 };
	o->dir_list(t, 500, 0, dl_cb, &l);
	CHECK(l.n == 3 && !strcmp(l.names[0], "zeta") && !strcmp(l.names[2], "mid"),
	      "listing is in cookie (insertion) order and stays in its directory (%d entries)", l.n);
	l.n = 0;
	o->dir_list(t, 500, 4, dl_cb, &l);
	CHECK(l.n == 2 && l.cookies[0] == 4, "listing resumes at a cookie");
	struct dirent_rec d;
	CHECK_RC(o->dirent_get(t, 500, "alpha", 5, &d), 0, "entry by name");
	CHECK(d.ino == 11 && d.cookie == 4, "entry fields round-trip");
	struct dirent_rec alpha = { 11, S_IFREG, 4 };
	o->dirent_del(t, 500, "alpha", 5, &alpha);
	l.n = 0;
	o->dir_list(t, 500, 0, dl_cb, &l);
	CHECK(l.n == 2, "a deleted entry leaves both indexes");
	CHECK_RC(o->dirent_get(t, 500, "alpha", 5, &d), -ENOENT, "deleted entry is gone by name");
	o->abort(t);
}

struct log_check {
	uint64_t expect;
	int bad;
	uint64_t count;
};

static int log_cb(void *arg, const struct cl_rec *r)
{
	struct log_check *c = arg;
	if (r->seq != c->expect)
		c->bad++;
	c->expect = r->seq + 1;
	c->count++;
	return 0;
}

struct writer_arg {
	struct store *s;
	int id;
	int committed;
};

static void *writer(void *p)
{
	struct writer_arg *w = p;
	const struct store_ops *o = w->s->ops;
	for (int i = 0; i < 300; i++) {
		struct store_txn *t;
		o->begin(w->s, &t);
		struct cl_rec r = { .op = CL_WRITE, .ino = (uint64_t)w->id, .version = (uint64_t)i };
		o->changelog_append(t, &r);
		if (i % 2)
			o->changelog_append(t, &r); /* two records in one transaction */
		if (i % 7 == 0) {
			o->abort(t); /* an aborted transaction must not leave a gap */
			continue;
		}
		if (o->commit(t) == 0)
			w->committed += (i % 2) ? 2 : 1;
	}
	return NULL;
}

static void test_changelog_gap_free(struct store *s)
{
	uint64_t first0, last0;
	s->ops->changelog_bounds(s, &first0, &last0);
	pthread_t th[4];
	struct writer_arg w[4];
	for (int i = 0; i < 4; i++) {
		w[i] = (struct writer_arg){ s, i + 1, 0 };
		pthread_create(&th[i], NULL, writer, &w[i]);
	}
	int total = 0;
	for (int i = 0; i < 4; i++) {
		pthread_join(th[i], NULL);
		total += w[i].committed;
	}
	struct log_check c = { last0 + 1, 0, 0 };
	s->ops->changelog_read(s, last0 + 1, log_cb, &c);
	CHECK(c.bad == 0, "changelog sequence numbers are gap-free under 4 concurrent writers");
	CHECK(c.count == (uint64_t)total, "one record per committed append (%llu of %d)",
	      (unsigned long long)c.count, total);
}

static void test_ino_alloc(const char *dir, struct mfs_volume **vp)
{
	struct store *s = (*vp)->store;
	uint64_t a, b;
	s->ops->ino_alloc(s, &a);
	s->ops->ino_alloc(s, &b);
	CHECK(b > a && a > MFS_ROOT_INO, "inode numbers grow");
	mfs_close(*vp);
	char err[256];
	CHECK_RC(mfs_open(dir, 0, vp, err, sizeof err), 0, "reopen");
	s = (*vp)->store;
	uint64_t c;
	s->ops->ino_alloc(s, &c);
	CHECK(c > b, "no inode number is handed out twice across a reopen");
}

static void test_readonly_view(const char *dir, struct mfs_volume *v)
{
	char err[256];
	struct mfs_volume *busy;
	CHECK_RC(mfs_open(dir, 0, &busy, err, sizeof err), -EBUSY, "a second writer is refused");
	CHECK(strstr(err, "in use") != NULL, "with a clear message: %s", err);
	struct mfs_volume *ro;
	CHECK_RC(mfs_open(dir, STORE_OPEN_READONLY, &ro, err, sizeof err), 0, "a read-only view opens beside the writer");
	struct store *s = v->store;
	struct store_txn *t;
	s->ops->begin(s, &t);
	struct inode_rec in = mk_inode(4242);
	s->ops->inode_put(t, &in);
	s->ops->commit(t);
	CHECK_RC(ro->store->ops->catch_up(ro->store), 0, "the view catches up");
	CHECK_RC(ns_getattr(ro, 4242, &in), 0, "and sees what the writer committed");
	struct inode_rec out;
	struct mfs_ctx c = { 0, 0, 1 };
	CHECK_RC(ns_mkdir(ro, &c, MFS_ROOT_INO, "x", 0755, &out), -EROFS, "the view cannot write");
	mfs_close(ro);
}

int main(void)
{
	char dir[256];
	struct mfs_volume *v = t_volume(dir, sizeof dir, 0, 0);
	CHECK(v->sb.inline_threshold == 0 && v->sb.chunk_size == MFS_DEFAULT_CHUNK_SIZE,
	      "superblock records the format options");
	test_commit_abort(v->store);
	test_locking(v->store);
	test_dirents(v->store);
	test_changelog_gap_free(v->store);
	test_ino_alloc(dir, &v);
	test_readonly_view(dir, v);
	mfs_close(v);

	char err[256];
	/* a volume written by a later format version is refused, not misread */
	struct store *raw;
	CHECK_RC(store_open(dir, 0, &raw, err, sizeof err), 0, "open the store underneath");
	struct superblock sb;
	raw->ops->super_get(raw, &sb);
	sb.format_version = MFS_FORMAT_VERSION + 1;
	raw->ops->super_put(raw, &sb);
	raw->ops->close(raw);
	struct mfs_volume *later;
	CHECK_RC(mfs_open(dir, 0, &later, err, sizeof err), -EPROTO, "a volume of another format version");
	CHECK(strstr(err, "format version") != NULL, "is refused with a clear message: %s", err);

	struct mfs_volume *none;
	CHECK_RC(mfs_open("/nonexistent/metafs", 0, &none, err, sizeof err), -ENOENT, "a missing volume");
	CHECK(strstr(err, "no such volume") != NULL, "is named as such: %s", err);
	struct mfs_format_opts o = { MFS_DEFAULT_INLINE_THRESHOLD, 0 };
	CHECK_RC(mfs_format(dir, &o, err, sizeof err), -EEXIST, "formatting over a volume is refused");
	o.chunk_size = 5000;
	CHECK_RC(mfs_format("/tmp/metafs-unit-never", &o, err, sizeof err), -EINVAL, "a chunk size that is not a power of two is refused");
	t_rmrf(dir);
	return t_done();
}
