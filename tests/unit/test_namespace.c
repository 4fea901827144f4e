/* SPDX-License-Identifier: Apache-2.0 */
/* Namespace-level tests, no FUSE: POSIX rules on names, links, renames,
 * readdir cookies, xattrs, orphans, and the changelog a session writes. */
#include "harness.h"

#include <linux/fs.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/xattr.h>

#include "ns_helpers.h"

static uint32_t nlink_of(struct mfs_volume *v, uint64_t ino)
{
	struct inode_rec in;
	return ns_getattr(v, ino, &in) ? 9999 : in.nlink;
}

static void test_names(struct mfs_volume *v)
{
	char n255[256], n256[257];
	memset(n255, 'a', 255);
	n255[255] = 0;
	memset(n256, 'b', 256);
	n256[256] = 0;
	struct inode_rec in, got;
	CHECK_RC(ns_mknod(v, &C, ROOT, n255, S_IFREG | 0600, 0, &in), 0, "a 255-byte name");
	CHECK_RC(ns_mknod(v, &C, ROOT, n256, S_IFREG | 0600, 0, &in), -ENAMETOOLONG, "a 256-byte name");
	CHECK_RC(ns_lookup(v, ROOT, n256, &got), -ENAMETOOLONG, "lookup of a 256-byte name");
	CHECK_RC(ns_mknod(v, &C, ROOT, n255, S_IFREG | 0600, 0, &in), -EEXIST, "create over an existing name");
	CHECK_RC(ns_lookup(v, ROOT, n255, &got), 0, "lookup");
	CHECK(got.uid == 1000 && got.gid == 1000 && (got.mode & 07777) == 0600 && got.nlink == 1,
	      "owner, mode and link count of a new file");
	CHECK_RC(ns_lookup(v, ROOT, "missing", &got), -ENOENT, "lookup of a missing name");
	CHECK_RC(ns_mknod(v, &C, ROOT, "fifo", S_IFIFO | 0644, 0, &in), 0, "mknod fifo");
	CHECK_RC(ns_mknod(v, &C, ROOT, "sock", S_IFSOCK | 0644, 0, &in), 0, "mknod socket");
	CHECK_RC(ns_mknod(v, &C, ROOT, "chr", S_IFCHR | 0644, makedev(1, 3), &in), 0, "mknod char device");
	CHECK(in.rdev == makedev(1, 3), "device number kept");
	CHECK_RC(ns_mknod(v, &C, ROOT, "blk", S_IFBLK | 0644, makedev(8, 1), &in), 0, "mknod block device");
	uint64_t f = mkfile(v, ROOT, "plain");
	CHECK_RC(ns_mknod(v, &C, f, "x", S_IFREG | 0644, 0, &in), -ENOTDIR, "create inside a file");
}

static void test_dirs_and_links(struct mfs_volume *v)
{
	uint64_t top = mkdir_(v, ROOT, "top");
	uint32_t root_links = nlink_of(v, ROOT);
	CHECK(nlink_of(v, top) == 2, "a new directory has 2 links");
	mkdir_(v, top, "a");
	mkdir_(v, top, "b");
	mkdir_(v, top, "c");
	CHECK(nlink_of(v, top) == 5, "a directory with 3 subdirectories has 5 links");
	struct ns_unlinked g;
	CHECK_RC(ns_rmdir(v, &C, top, "c", &g), 0, "rmdir an empty directory");
	CHECK(nlink_of(v, top) == 4 && g.nlink == 0, "rmdir drops the parent's link count");
	uint64_t f = mkfile(v, top, "f");
	CHECK_RC(ns_rmdir(v, &C, ROOT, "top", &g), -ENOTEMPTY, "rmdir of a non-empty directory");
	CHECK_RC(ns_rmdir(v, &C, top, "f", &g), -ENOTDIR, "rmdir of a file");
	CHECK_RC(ns_unlink(v, &C, top, "a", &g), -EISDIR, "unlink of a directory");
	struct inode_rec in;
	CHECK_RC(ns_link(v, &C, top, ROOT, "toplink", &in), -EPERM, "hard link to a directory");
	CHECK_RC(ns_link(v, &C, f, ROOT, "flink", &in), 0, "hard link to a file");
	CHECK(in.nlink == 2, "link count 2 after link");
	CHECK_RC(ns_link(v, &C, f, ROOT, "flink", &in), -EEXIST, "link over an existing name");
	CHECK_RC(ns_unlink(v, &C, top, "f", &g), 0, "unlink one name");
	CHECK(g.ino == f && g.nlink == 1, "one link left");
	CHECK_RC(ns_unlink(v, &C, ROOT, "flink", &g), 0, "unlink the last name");
	CHECK(g.nlink == 0, "no links left");
	CHECK_RC(ns_getattr(v, f, &in), 0, "an unlinked inode stays readable until reclaimed");
	CHECK_RC(ns_reclaim(v, f), 0, "reclaim");
	CHECK_RC(ns_getattr(v, f, &in), -ENOENT, "reclaimed inode is gone");
	CHECK(nlink_of(v, ROOT) == root_links, "root link count unchanged by work inside top");

	struct inode_rec sl;
	CHECK_RC(ns_symlink(v, &C, top, "sl", "../some/target", &sl), 0, "symlink");
	char buf[64];
	int n = ns_readlink(v, sl.ino, buf, sizeof buf);
	CHECK(n == 14 && !memcmp(buf, "../some/target", 14), "readlink returns the target");
	CHECK(sl.size == 14 && S_ISLNK(sl.mode), "symlink size is the target length");
}

static void test_rename(struct mfs_volume *v)
{
	uint64_t d = mkdir_(v, ROOT, "rn");
	uint64_t a = mkfile(v, d, "a");
	uint64_t b = mkfile(v, d, "b");
	struct ns_unlinked g;
	struct inode_rec in;
	CHECK_RC(ns_rename(v, &C, d, "a", d, "b", RENAME_NOREPLACE, &g), -EEXIST, "RENAME_NOREPLACE onto a name");
	CHECK_RC(ns_rename(v, &C, d, "a", d, "b", 0, &g), 0, "rename over a file");
	CHECK(g.ino == b && g.nlink == 0, "the replaced file lost its last link");
	CHECK_RC(ns_lookup(v, d, "b", &in), 0, "new name");
	CHECK(in.ino == a, "names the moved inode");
	CHECK_RC(ns_lookup(v, d, "a", &in), -ENOENT, "old name gone");

	uint64_t x = mkfile(v, d, "x");
	CHECK_RC(ns_rename(v, &C, d, "x", d, "b", RENAME_EXCHANGE, &g), 0, "RENAME_EXCHANGE");
	ns_lookup(v, d, "b", &in);
	uint64_t now_b = in.ino;
	ns_lookup(v, d, "x", &in);
	CHECK(now_b == x && in.ino == a, "exchange swaps the two inodes");
	CHECK_RC(ns_rename(v, &C, d, "x", d, "nothere", RENAME_EXCHANGE, &g), -ENOENT, "exchange with a missing name");

	uint64_t s1 = mkdir_(v, d, "s1");
	uint64_t s2 = mkdir_(v, s1, "s2");
	CHECK_RC(ns_rename(v, &C, d, "s1", s2, "inside", 0, &g), -EINVAL, "a directory into its own subtree");
	CHECK_RC(ns_rename(v, &C, d, "s1", s1, "self", 0, &g), -EINVAL, "a directory into itself");
	uint64_t e = mkdir_(v, d, "e");
	mkdir_(v, d, "full");
	mkfile(v, d, "full") /* fails: exists */;
	uint64_t full;
	ns_lookup(v, d, "full", &in);
	full = in.ino;
	mkfile(v, full, "content");
	CHECK_RC(ns_rename(v, &C, d, "e", d, "full", 0, &g), -ENOTEMPTY, "a directory over a non-empty one");
	CHECK_RC(ns_rename(v, &C, d, "e", d, "b", 0, &g), -ENOTDIR, "a directory over a file");
	CHECK_RC(ns_rename(v, &C, d, "b", d, "e", 0, &g), -EISDIR, "a file over a directory");

	uint32_t dl = nlink_of(v, d), s2l = nlink_of(v, s2);
	CHECK_RC(ns_rename(v, &C, d, "e", s2, "e2", 0, &g), 0, "a directory across directories");
	CHECK(nlink_of(v, d) == dl - 1 && nlink_of(v, s2) == s2l + 1, "link counts of both parents follow");
	ns_getattr(v, e, &in);
	CHECK(in.parent == s2, "'..' of the moved directory is its new parent");
	uint64_t empty = mkdir_(v, d, "empty");
	dl = nlink_of(v, d);
	CHECK_RC(ns_rename(v, &C, s2, "e2", d, "empty", 0, &g), 0, "a directory over an empty directory");
	CHECK(g.ino == empty && g.nlink == 0, "the replaced directory is gone");
	CHECK(nlink_of(v, d) == dl, "parent link count: one directory left, one came");
	CHECK_RC(ns_rename(v, &C, d, "b", d, "b", 0, &g), 0, "rename onto itself is a no-op");
	uint64_t h = mkfile(v, d, "h1");
	ns_link(v, &C, h, d, "h2", &in);
	CHECK_RC(ns_rename(v, &C, d, "h1", d, "h2", 0, &g), 0, "rename between two links of one file");
	CHECK_RC(ns_lookup(v, d, "h1", &in), 0, "does nothing (POSIX)");
}

struct seen {
	char names[4096][16];
	int n;
	int stop_after;
	uint64_t next;
};

static int seen_cb(void *arg, const char *name, size_t len, const struct inode_rec *attr, uint32_t type,
		   uint64_t ino, uint64_t next)
{
	struct seen *s = arg;
	if (s->stop_after && s->n >= s->stop_after)
		return 1;
	snprintf(s->names[s->n++], 16, "%.*s", (int)len, name);
	s->next = next;
	return 0;
}

static int count_name(struct seen *s, const char *name)
{
	int c = 0;
	for (int i = 0; i < s->n; i++)
		c += !strcmp(s->names[i], name);
	return c;
}

static void test_readdir_cookies(struct mfs_volume *v)
{
	uint64_t d = mkdir_(v, ROOT, "rd");
	char name[16];
	for (int i = 0; i < 100; i++) {
		snprintf(name, sizeof name, "f%03d", i);
		mkfile(v, d, name);
	}
	struct seen *s = calloc(1, sizeof *s);
	s->stop_after = 40;
	ns_readdir(v, d, 0, true, seen_cb, s);
	CHECK(s->n == 40 && !strcmp(s->names[0], ".") && !strcmp(s->names[1], ".."), "first page starts with . and ..");
	/* between pages: remove entries on both sides of the cursor, add new ones */
	struct ns_unlinked g;
	ns_unlink(v, &C, d, "f010", &g);
	ns_unlink(v, &C, d, "f080", &g);
	mkfile(v, d, "new1");
	ns_rename(v, &C, d, "f090", d, "f090-renamed", 0, &g);
	s->stop_after = 0;
	ns_readdir(v, d, s->next, false, seen_cb, s);
	int dup = 0, missing = 0;
	for (int i = 0; i < 100; i++) {
		snprintf(name, sizeof name, "f%03d", i);
		int c = count_name(s, name);
		if (c > 1)
			dup++;
		if (c == 0 && i != 80 && i != 90)
			missing++;
	}
	CHECK(dup == 0, "no entry listed twice across pages with concurrent changes");
	CHECK(missing == 0, "every entry present throughout is listed");
	CHECK(count_name(s, "f080") == 0, "an entry removed ahead of the cursor is not listed");
	CHECK(count_name(s, "new1") == 1 && count_name(s, "f090-renamed") == 1, "entries added during listing appear once");
	s->n = 0;
	s->stop_after = 0;
	ns_readdir(v, d, 0, false, seen_cb, s);
	CHECK(s->n == 2 + 100 - 2 + 1, "a fresh listing has every entry (%d)", s->n);
	free(s);
}

static void test_xattrs(struct mfs_volume *v)
{
	uint64_t f = mkfile(v, ROOT, "xf");
	char buf[128];
	CHECK_RC(ns_setxattr(v, &C, f, "user.k", "v1", 2, XATTR_REPLACE), -ENODATA, "XATTR_REPLACE of a missing name");
	CHECK_RC(ns_setxattr(v, &C, f, "user.k", "v1", 2, XATTR_CREATE), 0, "XATTR_CREATE");
	CHECK_RC(ns_setxattr(v, &C, f, "user.k", "v2", 2, XATTR_CREATE), -EEXIST, "XATTR_CREATE of an existing name");
	CHECK_RC(ns_setxattr(v, &C, f, "user.k", "value2", 6, XATTR_REPLACE), 0, "XATTR_REPLACE");
	CHECK(ns_getxattr(v, f, "user.k", NULL, 0) == 6, "size query");
	CHECK_RC(ns_getxattr(v, f, "user.k", buf, 3), -ERANGE, "a buffer too small");
	CHECK(ns_getxattr(v, f, "user.k", buf, sizeof buf) == 6 && !memcmp(buf, "value2", 6), "value");
	CHECK_RC(ns_getxattr(v, f, "user.none", buf, sizeof buf), -ENODATA, "a missing name");
	CHECK_RC(ns_setxattr(v, &C, f, "trusted.t", "", 0, 0), 0, "trusted namespace, empty value");
	CHECK_RC(ns_setxattr(v, &C, f, "security.s", "x", 1, 0), 0, "security namespace");
	CHECK_RC(ns_setxattr(v, &C, f, "bogus.k", "x", 1, 0), -EOPNOTSUPP, "an unknown namespace");
	char *big = calloc(1, MFS_XATTR_VALUE_MAX + 1);
	CHECK_RC(ns_setxattr(v, &C, f, "user.big", big, MFS_XATTR_VALUE_MAX + 1, 0), -E2BIG, "a value over 64 KiB");
	CHECK_RC(ns_setxattr(v, &C, f, "user.big", big, MFS_XATTR_VALUE_MAX, 0), 0, "a value of exactly 64 KiB");
	free(big);
	int n = ns_listxattr(v, f, NULL, 0);
	CHECK(n == (int)(strlen("user.k") + strlen("trusted.t") + strlen("security.s") + strlen("user.big") + 4),
	      "list size query (%d)", n);
	CHECK_RC(ns_listxattr(v, f, buf, 5), -ERANGE, "list into a buffer too small");
	CHECK_RC(ns_removexattr(v, &C, f, "user.k"), 0, "remove");
	CHECK_RC(ns_removexattr(v, &C, f, "user.k"), -ENODATA, "remove of a missing name");
}

struct rec_list {
	uint32_t ops[64];
	char names[64][32];
	uint64_t seqs[64];
	int n;
};

static int rec_cb(void *arg, const struct cl_rec *r)
{
	struct rec_list *l = arg;
	if (l->n < 64) {
		l->ops[l->n] = r->op;
		l->seqs[l->n] = r->seq;
		if (r->op == CL_RENAME)
			snprintf(l->names[l->n], 32, "%.*s>%.*s", (int)r->name_len, r->name, (int)r->new_name_len, r->new_name);
		else if (r->op == CL_SETXATTR)
			snprintf(l->names[l->n], 32, "%.*s=%.*s", (int)r->xname_len, r->xname, (int)r->value_len,
				 (const char *)r->value);
		else
			snprintf(l->names[l->n], 32, "%.*s", (int)r->name_len, r->name);
	}
	l->n++;
	return 0;
}

static void test_changelog_session(struct mfs_volume *v)
{
	uint64_t first, last;
	v->store->ops->changelog_bounds(v->store, &first, &last);
	uint64_t d = mkdir_(v, ROOT, "cl");
	uint64_t f = mkfile(v, d, "f");
	struct ns_extent e = { 0, 5, "hello" };
	ns_write(v, &C, f, &e, 1, NULL, NULL);
	ns_setxattr(v, &C, f, "user.tag", "x", 1, 0);
	struct ns_unlinked g;
	ns_rename(v, &C, d, "f", d, "g", 0, &g);
	struct ns_setattr sa = { .mask = MFS_SET_MODE, .mode = 0600 };
	struct inode_rec in;
	ns_setattr(v, &C, f, &sa, &in);
	ns_removexattr(v, &C, f, "user.tag");
	ns_unlink(v, &C, d, "g", &g);
	ns_rmdir(v, &C, ROOT, "cl", &g);

	struct rec_list l = { .n = 0 };
	v->store->ops->changelog_read(v->store, last + 1, rec_cb, &l);
	static const uint32_t want[] = { CL_MKDIR, CL_CREATE, CL_WRITE, CL_SETXATTR, CL_RENAME,
					 CL_SETATTR, CL_REMOVEXATTR, CL_UNLINK, CL_RMDIR };
	int match = l.n == (int)(sizeof want / sizeof want[0]);
	for (int i = 0; match && i < l.n; i++)
		match = l.ops[i] == want[i] && l.seqs[i] == last + 1 + (uint64_t)i;
	CHECK(match, "a scripted session leaves exactly its records, in order, gap-free (%d records)", l.n);
	CHECK(!strcmp(l.names[0], "cl") && !strcmp(l.names[1], "f") && !strcmp(l.names[3], "user.tag=x") &&
	      !strcmp(l.names[4], "f>g") && !strcmp(l.names[7], "g") && !strcmp(l.names[8], "cl"),
	      "records name what changed");
	/* a failing operation leaves no record */
	uint64_t before = last + (uint64_t)l.n;
	CHECK_RC(ns_mkdir(v, &C, ROOT, "top", 0755, &in), -EEXIST, "a failing mkdir");
	v->store->ops->changelog_bounds(v->store, &first, &last);
	CHECK(last == before, "leaves no changelog record");
}

static void test_orphans_across_reopen(const char *dir, struct mfs_volume **vp)
{
	struct mfs_volume *v = *vp;
	uint64_t f = mkfile(v, ROOT, "orphan");
	struct ns_extent e = { 0, 3, "abc" };
	ns_write(v, &C, f, &e, 1, NULL, NULL);
	struct ns_unlinked g;
	ns_unlink(v, &C, ROOT, "orphan", &g);
	char buf[4];
	CHECK(ns_read(v, f, 0, 3, buf) == 3 && !memcmp(buf, "abc", 3), "an unlinked file's data stays readable");
	mfs_close(v);
	char err[256];
	mfs_open(dir, 0, vp, err, sizeof err);
	v = *vp;
	CHECK(ns_reclaim_orphans(v) >= 1, "orphans left by a crash are reclaimed at the next open");
	struct inode_rec in;
	CHECK_RC(ns_getattr(v, f, &in), -ENOENT, "the orphan is gone");
}

int main(void)
{
	char dir[256];
	struct mfs_volume *v = t_volume(dir, sizeof dir, MFS_DEFAULT_INLINE_THRESHOLD, 0);
	test_names(v);
	test_dirs_and_links(v);
	test_rename(v);
	test_readdir_cookies(v);
	test_xattrs(v);
	test_changelog_session(v);
	test_orphans_across_reopen(dir, &v);
	mfs_close(v);
	t_rmrf(dir);
	return t_done();
}
