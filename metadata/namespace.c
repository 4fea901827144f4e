/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The namespace layer: every POSIX rule about names, links, times and
 * xattrs, written once over the store interface.
 *
 * Each operation is one store transaction that also appends its changelog
 * record(s); a transaction that loses a lock race is retried whole.
 * Lock order, so that operations on several inodes do not deadlock:
 * the global rename lock (cross-directory renames only), then parent
 * directories in inode-number order, then the inodes named in them in
 * inode-number order.
 */
#include "metadata.h"
#include "blockstore.h"
#include "provenance.h"
#include "common.h"

#include <errno.h>
#include <linux/falloc.h>
#include <linux/fs.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/xattr.h>

#define MAX_ATTEMPTS 40
#define MFS_LINK_MAX 65000

#define OPS(t) ((t)->store->ops)

static struct bs_config bscfg(const struct mfs_volume *v)
{
	return (struct bs_config){ v->sb.inline_threshold, v->sb.chunk_size };
}

int ns_txn_run(struct mfs_volume *v, int (*fn)(struct store_txn *t, void *arg), void *arg)
{
	if (v->readonly)
		return -EROFS;
	struct store *s = v->store;
	unsigned backoff = 100;
	for (int attempt = 0; attempt < MAX_ATTEMPTS; attempt++) {
		struct store_txn *t;
		int rc = s->ops->begin(s, &t);
		if (rc)
			return rc;
		rc = fn(t, arg);
		if (rc == 0)
			rc = s->ops->commit(t);
		else
			s->ops->abort(t);
		if (rc != MFS_ERETRY)
			return rc;
		/* randomized exponential backoff, so that two retrying
		 * transactions do not collide again in lockstep */
		mfs_sleep_us(backoff / 2 + (unsigned)rand() % (backoff / 2 + 1));
		if (backoff < 50000)
			backoff *= 2;
	}
	log_error("a transaction kept conflicting; gave up after %d attempts", MAX_ATTEMPTS);
	return -EIO;
}

/* Read-only operations run the same way on a writer or a read-only view. */
static int ro_run(struct mfs_volume *v, int (*fn)(struct store_txn *t, void *arg), void *arg)
{
	struct store *s = v->store;
	for (int attempt = 0; attempt < MAX_ATTEMPTS; attempt++) {
		struct store_txn *t;
		int rc = s->ops->begin_read(s, &t);
		if (rc)
			return rc;
		rc = fn(t, arg);
		s->ops->abort(t);
		if (rc != MFS_ERETRY)
			return rc;
		mfs_sleep_us(200);
	}
	return -EIO;
}

/* Refuses an operation that adds need bytes when the disk under the store
 * would fall below the reserve. Deleting never needs room, so it is never
 * refused: that is how a full volume is freed. statvfs is asked at most
 * every 20 ms, with the bytes let through since then counted against it. */
static int space_check(struct mfs_volume *v, uint64_t need)
{
	if (!v->space_reserve)
		return 0;
	int64_t now = mfs_now_ns();
	if (now - v->space_checked_ns > 20000000) {
		struct statvfs fs;
		if (v->store->ops->statfs(v->store, &fs) == 0)
			v->space_free = (uint64_t)fs.f_bavail * fs.f_frsize;
		v->space_checked_ns = now;
	}
	uint64_t free_now = v->space_free;
	if (free_now < v->space_reserve + need) {
		if (now - v->space_room_ns > 2000000000LL) {
			v->space_room_ns = now;
			v->store->ops->make_room(v->store);
			v->space_checked_ns = 0; /* look again next time */
		}
		return -ENOSPC;
	}
	v->space_free = free_now - need;
	return 0;
}

static int check_name(const char *name)
{
	size_t len = strlen(name);
	if (len == 0)
		return -EINVAL;
	if (len > MFS_NAME_MAX)
		return -ENAMETOOLONG;
	return 0;
}

static void bump(struct inode_rec *in)
{
	in->version++;
}

static void touch_dir(struct inode_rec *dir, struct timespec now)
{
	dir->mtime = dir->ctime = now;
	bump(dir);
}

struct cl_rec cl_make(uint32_t op, const struct mfs_ctx *c, const struct inode_rec *in)
{
	struct cl_rec r = {
		.time_ns = mfs_now_ns(),
		.op = op,
		.ino = in->ino,
		.version = in->version,
		.mode = in->mode,
		.nlink = in->nlink,
		.size = in->size,
	};
	if (c) {
		r.uid = c->uid;
		r.gid = c->gid;
		r.pid = c->pid;
	}
	return r;
}

static void cl_name(struct cl_rec *r, uint64_t parent, const char *name)
{
	r->parent = parent;
	r->name = name;
	r->name_len = (uint32_t)strlen(name);
}

/* Locks and reads a directory that may receive or lose entries. */
static int lock_dir(struct store_txn *t, uint64_t ino, struct inode_rec *out)
{
	int rc = OPS(t)->inode_get(t, ino, out, true);
	if (rc)
		return rc;
	if (!S_ISDIR(out->mode))
		return -ENOTDIR;
	if (out->nlink == 0)
		return -ENOENT; /* removed, still open */
	return 0;
}

static int missing_inode(uint64_t parent, const char *name, uint64_t ino)
{
	log_error("entry '%s' in directory %llu names inode %llu, which does not exist", name,
		  (unsigned long long)parent, (unsigned long long)ino);
	return -EIO;
}

/* lock_dir, then the entry name in it: 0 with *found telling whether there
 * is one; with child, the inode it names, locked. One call to a store that
 * has entry_get. */
static int lock_dir_entry(struct store_txn *t, uint64_t ino, struct inode_rec *dir, const char *name, size_t len,
			  bool *found, struct dirent_rec *d, struct inode_rec *child)
{
	int rc;
	if (OPS(t)->entry_get) {
		if ((rc = OPS(t)->entry_get(t, ino, true, dir, name, len, found, d, child)))
			return rc;
		if (!S_ISDIR(dir->mode))
			return -ENOTDIR;
		if (dir->nlink == 0)
			return -ENOENT;
	} else {
		if ((rc = lock_dir(t, ino, dir)))
			return rc;
		rc = OPS(t)->dirent_get(t, ino, name, len, d);
		if (rc && rc != -ENOENT)
			return rc;
		*found = rc == 0;
		if (*found && child && (rc = OPS(t)->inode_get(t, d->ino, child, true)))
			return rc == -ENOENT ? missing_inode(ino, name, d->ino) : rc;
	}
	if (*found && child && child->ino == 0)
		return missing_inode(ino, name, d->ino);
	return 0;
}

/* ---------------------------------------------------------------- lookups */

struct lookup_args {
	uint64_t parent;
	const char *name;
	struct inode_rec *out;
};

static int do_lookup(struct store_txn *t, void *arg)
{
	struct lookup_args *a = arg;
	struct dirent_rec d;
	int rc;
	if (OPS(t)->entry_get) {
		struct inode_rec dir;
		bool found;
		rc = OPS(t)->entry_get(t, a->parent, false, &dir, a->name, strlen(a->name), &found, &d, a->out);
		if (rc)
			return rc;
		if (!found)
			return -ENOENT;
		return a->out->ino ? 0 : missing_inode(a->parent, a->name, d.ino);
	}
	rc = OPS(t)->dirent_get(t, a->parent, a->name, strlen(a->name), &d);
	if (rc)
		return rc;
	rc = OPS(t)->inode_get(t, d.ino, a->out, false);
	return rc == -ENOENT ? missing_inode(a->parent, a->name, d.ino) : rc;
}

int ns_lookup(struct mfs_volume *v, uint64_t parent, const char *name, struct inode_rec *out)
{
	int rc = check_name(name);
	if (rc)
		return rc;
	struct lookup_args a = { parent, name, out };
	return ro_run(v, do_lookup, &a);
}

struct getattr_args {
	uint64_t ino;
	struct inode_rec *out;
};

static int do_getattr(struct store_txn *t, void *arg)
{
	struct getattr_args *a = arg;
	return OPS(t)->inode_get(t, a->ino, a->out, false);
}

int ns_getattr(struct mfs_volume *v, uint64_t ino, struct inode_rec *out)
{
	struct getattr_args a = { ino, out };
	return ro_run(v, do_getattr, &a);
}

/* ---------------------------------------------------------------- setattr */

struct setattr_args {
	struct mfs_volume *v;
	const struct mfs_ctx *c;
	uint64_t ino;
	const struct ns_setattr *req;
	struct inode_rec *out;
};

static int do_setattr(struct store_txn *t, void *arg)
{
	struct setattr_args *a = arg;
	const struct ns_setattr *r = a->req;
	struct inode_rec in;
	int rc = OPS(t)->inode_get(t, a->ino, &in, true);
	if (rc)
		return rc;
	struct timespec now = mfs_now();
	uint32_t fields = 0;
	if (r->mask & MFS_SET_SIZE) {
		if (S_ISDIR(in.mode))
			return -EISDIR;
		if (!S_ISREG(in.mode))
			return -EINVAL;
		if (r->size != in.size) {
			struct bs_config cfg = bscfg(a->v);
			rc = bs_truncate(t, &cfg, &in, r->size);
			if (rc)
				return rc;
			in.mtime = now;
		}
		fields |= MFS_SET_SIZE;
	}
	if (r->mask & MFS_SET_MODE) {
		in.mode = (in.mode & S_IFMT) | (r->mode & 07777);
		fields |= MFS_SET_MODE;
	}
	if ((r->mask & MFS_SET_KILL_PRIV) && S_ISREG(in.mode)) {
		uint32_t kill = S_ISUID | ((in.mode & S_IXGRP) ? S_ISGID : 0);
		if (in.mode & kill) {
			in.mode &= ~kill;
			fields |= MFS_SET_MODE;
		}
	}
	if (r->mask & MFS_SET_UID) {
		in.uid = r->uid;
		fields |= MFS_SET_UID;
	}
	if (r->mask & MFS_SET_GID) {
		in.gid = r->gid;
		fields |= MFS_SET_GID;
	}
	if (r->mask & (MFS_SET_ATIME | MFS_SET_ATIME_NOW)) {
		in.atime = (r->mask & MFS_SET_ATIME_NOW) ? now : r->atime;
		fields |= MFS_SET_ATIME;
	}
	if (r->mask & (MFS_SET_MTIME | MFS_SET_MTIME_NOW)) {
		in.mtime = (r->mask & MFS_SET_MTIME_NOW) ? now : r->mtime;
		fields |= MFS_SET_MTIME;
	}
	/* every attribute change is a status change */
	in.ctime = (r->mask & MFS_SET_CTIME) ? r->ctime : now;
	fields |= MFS_SET_CTIME;
	bump(&in);
	rc = OPS(t)->inode_put(t, &in);
	if (rc)
		return rc;
	struct cl_rec cl = cl_make(CL_SETATTR, a->c, &in);
	cl.fields = fields;
	rc = OPS(t)->changelog_append(t, &cl);
	if (!rc)
		*a->out = in;
	return rc;
}

int ns_setattr(struct mfs_volume *v, const struct mfs_ctx *c, uint64_t ino,
	       const struct ns_setattr *req, struct inode_rec *out)
{
	struct setattr_args a = { v, c, ino, req, out };
	return ns_txn_run(v, do_setattr, &a);
}

/* ---------------------------------------------------------------- creation */

struct create_args {
	struct mfs_volume *v;
	const struct mfs_ctx *c;
	uint64_t parent;
	const char *name;
	uint32_t mode;
	uint64_t rdev;
	const char *target; /* symlinks */
	struct inode_rec *out;
	bool hold; /* opened here (ns_create_held) */
};

static int do_create(struct store_txn *t, void *arg)
{
	struct create_args *a = arg;
	struct inode_rec dir;
	size_t len = strlen(a->name);
	struct dirent_rec d;
	bool found;
	int rc = lock_dir_entry(t, a->parent, &dir, a->name, len, &found, &d, NULL);
	if (rc)
		return rc;
	if (found)
		return -EEXIST;
	bool is_dir = S_ISDIR(a->mode);
	if (is_dir && dir.nlink >= MFS_LINK_MAX)
		return -EMLINK;

	struct timespec now = mfs_now();
	struct inode_rec in = {
		.mode = a->mode,
		.nlink = is_dir ? 2 : 1,
		.uid = a->c->uid,
		.gid = a->c->gid,
		.rdev = a->rdev,
		.atime = now, .mtime = now, .ctime = now, .btime = now,
		.version = 1,
		.parent = is_dir ? a->parent : 0,
		.next_cookie = is_dir ? 3 : 0,
	};
	/* BSD group semantics under a setgid directory, as Linux does */
	if (dir.mode & S_ISGID) {
		in.gid = dir.gid;
		if (is_dir)
			in.mode |= S_ISGID;
	}
	rc = OPS(t)->ino_alloc(t->store, &in.ino);
	if (rc)
		return rc;
	if (a->target) {
		in.size = strlen(a->target);
		unsigned char *rec;
		size_t rec_len;
		rc = bs_frame(a->target, in.size, &rec, &rec_len);
		if (rc)
			return rc;
		rc = OPS(t)->inline_put(t, in.ino, rec, rec_len);
		free(rec);
		if (rc)
			return rc;
	}
	rc = OPS(t)->inode_put(t, &in);
	if (rc)
		return rc;
	d = (struct dirent_rec){ .ino = in.ino, .type = in.mode & S_IFMT, .cookie = dir.next_cookie++ };
	rc = OPS(t)->dirent_put(t, a->parent, a->name, len, &d);
	if (rc)
		return rc;
	if (is_dir)
		dir.nlink++;
	touch_dir(&dir, now);
	rc = OPS(t)->inode_put(t, &dir);
	if (rc)
		return rc;
	uint32_t op = a->target ? CL_SYMLINK : is_dir ? CL_MKDIR : S_ISREG(a->mode) ? CL_CREATE : CL_MKNOD;
	struct cl_rec cl = cl_make(op, a->c, &in);
	cl_name(&cl, a->parent, a->name);
	if (a->target) {
		cl.value = a->target;
		cl.value_len = (uint32_t)in.size;
	}
	rc = OPS(t)->changelog_append(t, &cl);
	if (!rc && a->hold && OPS(t)->hold)
		rc = OPS(t)->hold(t, in.ino, true);
	if (!rc)
		*a->out = in;
	return rc;
}

static int create_common(struct create_args *a)
{
	int rc = check_name(a->name);
	if (!rc)
		rc = space_check(a->v, 4096);
	if (rc)
		return rc;
	return ns_txn_run(a->v, do_create, a);
}

int ns_mknod(struct mfs_volume *v, const struct mfs_ctx *c, uint64_t parent,
	     const char *name, uint32_t mode, uint64_t rdev, struct inode_rec *out)
{
	switch (mode & S_IFMT) {
	case S_IFREG: case S_IFIFO: case S_IFSOCK: case S_IFCHR: case S_IFBLK:
		break;
	case 0:
		mode |= S_IFREG;
		break;
	default:
		return -EINVAL;
	}
	if (!S_ISCHR(mode) && !S_ISBLK(mode))
		rdev = 0;
	struct create_args a = { v, c, parent, name, mode, rdev, NULL, out, false };
	return create_common(&a);
}

int ns_create_held(struct mfs_volume *v, const struct mfs_ctx *c, uint64_t parent, const char *name,
		   uint32_t mode, struct inode_rec *out)
{
	struct create_args a = { v, c, parent, name, S_IFREG | (mode & 07777), 0, NULL, out, true };
	return create_common(&a);
}

int ns_mkdir(struct mfs_volume *v, const struct mfs_ctx *c, uint64_t parent,
	     const char *name, uint32_t mode, struct inode_rec *out)
{
	struct create_args a = { v, c, parent, name, S_IFDIR | (mode & 07777), 0, NULL, out, false };
	return create_common(&a);
}

int ns_symlink(struct mfs_volume *v, const struct mfs_ctx *c, uint64_t parent,
	       const char *name, const char *target, struct inode_rec *out)
{
	size_t len = strlen(target);
	if (len == 0)
		return -ENOENT;
	if (len > MFS_SYMLINK_MAX)
		return -ENAMETOOLONG;
	struct create_args a = { v, c, parent, name, S_IFLNK | 0777, 0, target, out, false };
	return create_common(&a);
}

struct readlink_args {
	struct mfs_volume *v;
	uint64_t ino;
	char *buf;
	size_t size;
};

static int do_readlink(struct store_txn *t, void *arg)
{
	struct readlink_args *a = arg;
	struct inode_rec in;
	int rc = OPS(t)->inode_get(t, a->ino, &in, false);
	if (rc)
		return rc;
	if (!S_ISLNK(in.mode))
		return -EINVAL;
	struct bs_config cfg = bscfg(a->v);
	/* the target lives inline whatever the volume's threshold */
	cfg.inline_threshold = MFS_SYMLINK_MAX + 1;
	size_t n = in.size < a->size ? (size_t)in.size : a->size;
	ssize_t got = bs_read(t, &cfg, &in, 0, n, a->buf);
	return got < 0 ? (int)got : (int)got;
}

int ns_readlink(struct mfs_volume *v, uint64_t ino, char *buf, size_t size)
{
	struct readlink_args a = { v, ino, buf, size };
	return ro_run(v, do_readlink, &a);
}

/* ---------------------------------------------------------------- link, unlink */

struct link_args {
	const struct mfs_ctx *c;
	uint64_t ino, newparent;
	const char *newname;
	struct inode_rec *out;
};

static int do_link(struct store_txn *t, void *arg)
{
	struct link_args *a = arg;
	struct inode_rec in, dir;
	int rc;
	/* two inodes, locked in inode-number order */
	if (a->ino < a->newparent) {
		rc = OPS(t)->inode_get(t, a->ino, &in, true);
		if (!rc)
			rc = lock_dir(t, a->newparent, &dir);
	} else {
		rc = lock_dir(t, a->newparent, &dir);
		if (!rc)
			rc = OPS(t)->inode_get(t, a->ino, &in, true);
	}
	if (rc)
		return rc;
	if (S_ISDIR(in.mode))
		return -EPERM;
	if (in.nlink == 0)
		return -ENOENT;
	if (in.nlink >= MFS_LINK_MAX)
		return -EMLINK;
	size_t len = strlen(a->newname);
	struct dirent_rec d;
	rc = OPS(t)->dirent_get(t, a->newparent, a->newname, len, &d);
	if (rc == 0)
		return -EEXIST;
	if (rc != -ENOENT)
		return rc;
	struct timespec now = mfs_now();
	in.nlink++;
	in.ctime = now;
	bump(&in);
	d = (struct dirent_rec){ .ino = in.ino, .type = in.mode & S_IFMT, .cookie = dir.next_cookie++ };
	touch_dir(&dir, now);
	if ((rc = OPS(t)->dirent_put(t, a->newparent, a->newname, len, &d)) ||
	    (rc = OPS(t)->inode_put(t, &in)) || (rc = OPS(t)->inode_put(t, &dir)))
		return rc;
	struct cl_rec cl = cl_make(CL_LINK, a->c, &in);
	cl_name(&cl, a->newparent, a->newname);
	rc = OPS(t)->changelog_append(t, &cl);
	if (!rc)
		*a->out = in;
	return rc;
}

int ns_link(struct mfs_volume *v, const struct mfs_ctx *c, uint64_t ino,
	    uint64_t newparent, const char *newname, struct inode_rec *out)
{
	int rc = check_name(newname);
	if (!rc)
		rc = space_check(v, 4096);
	if (rc)
		return rc;
	struct link_args a = { c, ino, newparent, newname, out };
	return ns_txn_run(v, do_link, &a);
}

/* Drops one name of an inode (already locked); orphans it at zero links. */
static int drop_link(struct store_txn *t, struct inode_rec *in, struct timespec now)
{
	if (S_ISDIR(in->mode))
		in->nlink = 0;
	else if (in->nlink > 0)
		in->nlink--;
	in->ctime = now;
	bump(in);
	int rc = OPS(t)->inode_put(t, in);
	if (!rc && in->nlink == 0)
		rc = OPS(t)->orphan_put(t, in->ino);
	return rc;
}

struct dir_empty_args {
	bool empty;
};

static int dir_empty_cb(void *arg, const char *name, size_t len, const struct dirent_rec *d)
{
	((struct dir_empty_args *)arg)->empty = false;
	return 1;
}

static int check_empty(struct store_txn *t, uint64_t ino)
{
	struct dir_empty_args e = { true };
	int rc = OPS(t)->dir_list(t, ino, 0, dir_empty_cb, &e);
	if (rc)
		return rc;
	return e.empty ? 0 : -ENOTEMPTY;
}

struct remove_args {
	const struct mfs_ctx *c;
	uint64_t parent;
	const char *name;
	bool dir;
	struct ns_unlinked *gone;
};

static int do_remove(struct store_txn *t, void *arg)
{
	struct remove_args *a = arg;
	struct inode_rec dir, in;
	size_t len = strlen(a->name);
	struct dirent_rec d;
	bool found;
	int rc = lock_dir_entry(t, a->parent, &dir, a->name, len, &found, &d, &in);
	if (rc)
		return rc;
	if (!found)
		return -ENOENT;
	if (a->dir && !S_ISDIR(d.type))
		return -ENOTDIR;
	if (!a->dir && S_ISDIR(d.type))
		return -EISDIR;
	if (a->dir && (rc = check_empty(t, in.ino)))
		return rc;
	struct timespec now = mfs_now();
	if ((rc = OPS(t)->dirent_del(t, a->parent, a->name, len, &d)) || (rc = drop_link(t, &in, now)))
		return rc;
	if (a->dir)
		dir.nlink--;
	touch_dir(&dir, now);
	if ((rc = OPS(t)->inode_put(t, &dir)))
		return rc;
	struct cl_rec cl = cl_make(a->dir ? CL_RMDIR : CL_UNLINK, a->c, &in);
	cl_name(&cl, a->parent, a->name);
	rc = OPS(t)->changelog_append(t, &cl);
	if (!rc && a->gone)
		*a->gone = (struct ns_unlinked){ in.ino, in.nlink };
	return rc;
}

int ns_unlink(struct mfs_volume *v, const struct mfs_ctx *c, uint64_t parent,
	      const char *name, struct ns_unlinked *gone)
{
	int rc = check_name(name);
	if (rc)
		return rc;
	struct remove_args a = { c, parent, name, false, gone };
	return ns_txn_run(v, do_remove, &a);
}

int ns_rmdir(struct mfs_volume *v, const struct mfs_ctx *c, uint64_t parent,
	     const char *name, struct ns_unlinked *gone)
{
	int rc = check_name(name);
	if (rc)
		return rc;
	if (!strcmp(name, "."))
		return -EINVAL;
	if (!strcmp(name, ".."))
		return -ENOTEMPTY;
	struct remove_args a = { c, parent, name, true, gone };
	return ns_txn_run(v, do_remove, &a);
}

/* ---------------------------------------------------------------- rename */

struct rename_args {
	const struct mfs_ctx *c;
	uint64_t parent, newparent;
	const char *name, *newname;
	unsigned flags;
	struct ns_unlinked *gone;
};

/* Is dir at or below ancestor? Parent pointers of directories only change
 * under the global rename lock, which the caller holds. */
static int is_within(struct store_txn *t, uint64_t dir, uint64_t ancestor)
{
	for (int depth = 0; depth < 100000; depth++) {
		if (dir == ancestor)
			return 1;
		if (dir == MFS_ROOT_INO)
			return 0;
		struct inode_rec in;
		int rc = OPS(t)->inode_get(t, dir, &in, false);
		if (rc)
			return rc;
		dir = in.parent;
	}
	return -ELOOP;
}

static int do_rename(struct store_txn *t, void *arg)
{
	struct rename_args *a = arg;
	bool cross = a->parent != a->newparent;
	bool exchange = a->flags & RENAME_EXCHANGE;
	int rc;
	if (cross && (rc = OPS(t)->lock_global(t, "rename")))
		return rc;

	struct inode_rec pdir, npdir_own;
	struct inode_rec *P = &pdir, *NP = cross ? &npdir_own : &pdir;
	uint64_t first = a->parent < a->newparent ? a->parent : a->newparent;
	uint64_t second = a->parent < a->newparent ? a->newparent : a->parent;
	/* each directory locked with its entry (the source's, or the
	 * destination's), the destination's entry in a directory of both */
	size_t len = strlen(a->name), newlen = strlen(a->newname);
	struct dirent_rec sd, dd;
	bool src_found, dst_exists;
	bool first_src = first == a->parent;
	if ((rc = lock_dir_entry(t, first, first_src ? P : NP, first_src ? a->name : a->newname,
				 first_src ? len : newlen, first_src ? &src_found : &dst_exists,
				 first_src ? &sd : &dd, NULL)))
		return rc;
	if (cross && (rc = lock_dir_entry(t, second, first_src ? NP : P, first_src ? a->newname : a->name,
					  first_src ? newlen : len, first_src ? &dst_exists : &src_found,
					  first_src ? &dd : &sd, NULL)))
		return rc;
	if (!cross) {
		rc = OPS(t)->dirent_get(t, a->newparent, a->newname, newlen, &dd);
		if (rc && rc != -ENOENT)
			return rc;
		dst_exists = rc == 0;
	}
	if (!src_found)
		return -ENOENT;
	if ((a->flags & RENAME_NOREPLACE) && dst_exists)
		return -EEXIST;
	if (exchange && !dst_exists)
		return -ENOENT;
	if (dst_exists && dd.ino == sd.ino)
		return 0; /* two names of one inode: POSIX says do nothing */

	/* the inodes named, in inode-number order; a parent may be among
	 * them only when renaming a directory into itself */
	if (sd.ino == a->newparent || (exchange && dst_exists && dd.ino == a->parent))
		return -EINVAL;
	struct inode_rec src, dst;
	uint64_t lo = sd.ino, hi = dst_exists ? dd.ino : 0;
	if (dst_exists && hi < lo) {
		lo = dd.ino;
		hi = sd.ino;
	}
	if ((rc = OPS(t)->inode_get(t, lo, lo == sd.ino ? &src : &dst, true)))
		return rc == -ENOENT ? -EIO : rc;
	if (dst_exists && (rc = OPS(t)->inode_get(t, hi, hi == sd.ino ? &src : &dst, true)))
		return rc == -ENOENT ? -EIO : rc;

	bool src_dir = S_ISDIR(src.mode), dst_dir = dst_exists && S_ISDIR(dst.mode);
	if (cross && src_dir) {
		rc = is_within(t, a->newparent, src.ino);
		if (rc)
			return rc > 0 ? -EINVAL : rc;
	}
	if (cross && exchange && dst_dir) {
		rc = is_within(t, a->parent, dst.ino);
		if (rc)
			return rc > 0 ? -EINVAL : rc;
	}
	if (dst_exists && !exchange) {
		if (src_dir && !dst_dir)
			return -ENOTDIR;
		if (!src_dir && dst_dir)
			return -EISDIR;
		if (dst_dir && (rc = check_empty(t, dst.ino)))
			return rc;
	}
	if (cross && src_dir && !(dst_dir && !exchange) && NP->nlink >= MFS_LINK_MAX)
		return -EMLINK;

	struct timespec now = mfs_now();
	if (exchange) {
		struct dirent_rec s2 = { dd.ino, dd.type, sd.cookie }, d2 = { sd.ino, sd.type, dd.cookie };
		if ((rc = OPS(t)->dirent_put(t, a->parent, a->name, len, &s2)) ||
		    (rc = OPS(t)->dirent_put(t, a->newparent, a->newname, newlen, &d2)))
			return rc;
		if (cross && src_dir) {
			src.parent = a->newparent;
			P->nlink--;
			NP->nlink++;
		}
		if (cross && dst_dir) {
			dst.parent = a->parent;
			NP->nlink--;
			P->nlink++;
		}
		dst.ctime = now;
		bump(&dst);
		if ((rc = OPS(t)->inode_put(t, &dst)))
			return rc;
	} else {
		if (dst_exists) {
			if ((rc = OPS(t)->dirent_del(t, a->newparent, a->newname, newlen, &dd)) ||
			    (rc = drop_link(t, &dst, now)))
				return rc;
			if (dst_dir)
				NP->nlink--;
		}
		if ((rc = OPS(t)->dirent_del(t, a->parent, a->name, len, &sd)))
			return rc;
		struct dirent_rec nd = { sd.ino, sd.type, NP->next_cookie++ };
		if ((rc = OPS(t)->dirent_put(t, a->newparent, a->newname, newlen, &nd)))
			return rc;
		if (cross && src_dir) {
			src.parent = a->newparent;
			P->nlink--;
			NP->nlink++;
		}
	}
	src.ctime = now;
	bump(&src);
	touch_dir(P, now);
	if (cross)
		touch_dir(NP, now);
	if ((rc = OPS(t)->inode_put(t, &src)) || (rc = OPS(t)->inode_put(t, P)) ||
	    (cross && (rc = OPS(t)->inode_put(t, NP))))
		return rc;

	struct cl_rec cl = cl_make(CL_RENAME, a->c, &src);
	cl_name(&cl, a->parent, a->name);
	cl.new_parent = a->newparent;
	cl.new_name = a->newname;
	cl.new_name_len = (uint32_t)newlen;
	cl.replaced = dst_exists && !exchange ? dst.ino : 0;
	cl.fields = exchange ? 1 : 0;
	rc = OPS(t)->changelog_append(t, &cl);
	if (!rc && a->gone)
		*a->gone = dst_exists && !exchange ? (struct ns_unlinked){ dst.ino, dst.nlink }
						   : (struct ns_unlinked){ 0, 0 };
	return rc;
}

int ns_rename(struct mfs_volume *v, const struct mfs_ctx *c, uint64_t parent,
	      const char *name, uint64_t newparent, const char *newname,
	      unsigned flags, struct ns_unlinked *gone)
{
	int rc = check_name(name);
	if (!rc)
		rc = check_name(newname);
	if (rc)
		return rc;
	if (flags & ~(unsigned)(RENAME_NOREPLACE | RENAME_EXCHANGE))
		return -EINVAL;
	if ((flags & RENAME_NOREPLACE) && (flags & RENAME_EXCHANGE))
		return -EINVAL;
	if (gone)
		*gone = (struct ns_unlinked){ 0, 0 };
	struct rename_args a = { c, parent, newparent, name, newname, flags, gone };
	return ns_txn_run(v, do_rename, &a);
}

/* ---------------------------------------------------------------- readdir */

struct readdir_args {
	uint64_t ino, cookie;
	bool want_attr;
	ns_readdir_cb cb;
	void *arg;
	struct store_txn *t;
	int stopped;
};

static int readdir_entry(void *arg, const char *name, size_t len, const struct dirent_rec *d)
{
	struct readdir_args *a = arg;
	struct inode_rec in, *pin = NULL;
	if (a->want_attr) {
		int rc = OPS(a->t)->inode_get(a->t, d->ino, &in, false);
		if (rc == -ENOENT)
			return 0; /* removed since the scan saw it */
		if (rc)
			return rc;
		pin = &in;
	}
	int rc = a->cb(a->arg, name, len, pin, d->type, d->ino, d->cookie + 1);
	if (rc > 0)
		a->stopped = 1;
	return rc;
}

static int do_readdir(struct store_txn *t, void *arg)
{
	struct readdir_args *a = arg;
	struct inode_rec dir;
	a->t = t;
	a->stopped = 0;
	int rc = OPS(t)->inode_get(t, a->ino, &dir, false);
	if (rc)
		return rc;
	if (!S_ISDIR(dir.mode))
		return -ENOTDIR;
	if (a->cookie == 0) {
		rc = a->cb(a->arg, ".", 1, a->want_attr ? &dir : NULL, S_IFDIR, dir.ino, 1);
		if (rc)
			return rc < 0 ? rc : 0;
	}
	if (a->cookie <= 1) {
		struct inode_rec up, *pup = NULL;
		if (a->want_attr) {
			rc = OPS(t)->inode_get(t, dir.parent, &up, false);
			if (rc)
				return rc;
			pup = &up;
		}
		rc = a->cb(a->arg, "..", 2, pup, S_IFDIR, dir.parent, 2);
		if (rc)
			return rc < 0 ? rc : 0;
	}
	if (dir.nlink == 0)
		return 0;
	return OPS(t)->dir_list(t, a->ino, a->cookie < 3 ? 3 : a->cookie, readdir_entry, a);
}

int ns_readdir(struct mfs_volume *v, uint64_t ino, uint64_t cookie, bool want_attr,
	       ns_readdir_cb cb, void *arg)
{
	struct readdir_args a = { ino, cookie, want_attr, cb, arg, NULL, 0 };
	return ro_run(v, do_readdir, &a);
}

int ns_statfs(struct mfs_volume *v, struct statvfs *out)
{
	int rc = v->store->ops->statfs(v->store, out);
	if (rc)
		return rc;
	out->f_namemax = MFS_NAME_MAX;
	/* inodes are records, not preallocated slots: report plenty free */
	out->f_files = 1ULL << 40;
	out->f_ffree = out->f_favail = (1ULL << 40) - 1;
	return 0;
}

/* ---------------------------------------------------------------- xattrs */

static int check_xattr_name(const char *name)
{
	size_t len = strlen(name);
	if (len == 0)
		return -EINVAL;
	if (len > MFS_XATTR_NAME_MAX)
		return -ERANGE;
	if (!strncmp(name, "user.", 5) || !strncmp(name, "trusted.", 8) || !strncmp(name, "security.", 9))
		return len > 5 ? 0 : -EINVAL;
	/* system.* carries POSIX ACLs, which metafs does not implement */
	return -EOPNOTSUPP;
}

struct xattr_args {
	const struct mfs_ctx *c;
	uint64_t ino;
	const char *name;
	const void *value;
	size_t size;
	int flags;
	void *buf;
	int result;
};

static int do_setxattr(struct store_txn *t, void *arg)
{
	struct xattr_args *a = arg;
	struct inode_rec in;
	int rc = OPS(t)->inode_get(t, a->ino, &in, true);
	if (rc)
		return rc;
	void *old = NULL;
	size_t oldlen;
	rc = OPS(t)->xattr_get(t, a->ino, a->name, &old, &oldlen);
	free(old);
	if (rc && rc != -ENOENT)
		return rc;
	bool exists = rc == 0;
	if ((a->flags & XATTR_CREATE) && exists)
		return -EEXIST;
	if ((a->flags & XATTR_REPLACE) && !exists)
		return -ENODATA;
	if ((rc = OPS(t)->xattr_put(t, a->ino, a->name, a->value, a->size)))
		return rc;
	in.ctime = mfs_now();
	bump(&in);
	if ((rc = OPS(t)->inode_put(t, &in)))
		return rc;
	struct cl_rec cl = cl_make(CL_SETXATTR, a->c, &in);
	cl.xname = a->name;
	cl.xname_len = (uint32_t)strlen(a->name);
	cl.value = a->value;
	cl.value_len = (uint32_t)a->size;
	return OPS(t)->changelog_append(t, &cl);
}

int ns_setxattr(struct mfs_volume *v, const struct mfs_ctx *c, uint64_t ino,
		const char *name, const void *value, size_t size, int flags)
{
	int rc = check_xattr_name(name);
	if (rc)
		return rc;
	if (size > MFS_XATTR_VALUE_MAX)
		return -E2BIG;
	if (flags & ~(XATTR_CREATE | XATTR_REPLACE))
		return -EINVAL;
	if ((rc = space_check(v, size + 4096)))
		return rc;
	struct xattr_args a = { c, ino, name, value, size, flags, NULL, 0 };
	return ns_txn_run(v, do_setxattr, &a);
}

static int do_getxattr(struct store_txn *t, void *arg)
{
	struct xattr_args *a = arg;
	struct inode_rec in;
	int rc = OPS(t)->inode_get(t, a->ino, &in, false);
	if (rc)
		return rc;
	void *val = NULL;
	size_t len;
	rc = OPS(t)->xattr_get(t, a->ino, a->name, &val, &len);
	if (rc == -ENOENT)
		return -ENODATA;
	if (rc)
		return rc;
	if (a->size == 0)
		a->result = (int)len;
	else if (a->size < len)
		rc = -ERANGE;
	else {
		memcpy(a->buf, val, len);
		a->result = (int)len;
	}
	free(val);
	return rc;
}

int ns_getxattr(struct mfs_volume *v, uint64_t ino, const char *name, void *buf, size_t size)
{
	int rc = check_xattr_name(name);
	if (rc)
		return rc == -EOPNOTSUPP ? -ENODATA : rc;
	struct xattr_args a = { NULL, ino, name, NULL, size, 0, buf, 0 };
	rc = ro_run(v, do_getxattr, &a);
	return rc ? rc : a.result;
}

struct list_acc {
	char *buf;
	size_t size, used;
	bool overflow;
};

static int list_cb(void *arg, const char *name, size_t len)
{
	struct list_acc *l = arg;
	if (l->size && l->used + len + 1 > l->size)
		l->overflow = true;
	else if (l->size) {
		memcpy(l->buf + l->used, name, len);
		l->buf[l->used + len] = '\0';
	}
	l->used += len + 1;
	return 0;
}

static int do_listxattr(struct store_txn *t, void *arg)
{
	struct xattr_args *a = arg;
	struct inode_rec in;
	int rc = OPS(t)->inode_get(t, a->ino, &in, false);
	if (rc)
		return rc;
	struct list_acc l = { a->buf, a->size, 0, false };
	rc = OPS(t)->xattr_list(t, a->ino, list_cb, &l);
	if (rc)
		return rc;
	if (l.overflow)
		return -ERANGE;
	a->result = (int)l.used;
	return 0;
}

int ns_listxattr(struct mfs_volume *v, uint64_t ino, char *buf, size_t size)
{
	struct xattr_args a = { NULL, ino, NULL, NULL, size, 0, buf, 0 };
	int rc = ro_run(v, do_listxattr, &a);
	return rc ? rc : a.result;
}

static int do_removexattr(struct store_txn *t, void *arg)
{
	struct xattr_args *a = arg;
	struct inode_rec in;
	int rc = OPS(t)->inode_get(t, a->ino, &in, true);
	if (rc)
		return rc;
	void *old = NULL;
	size_t oldlen;
	rc = OPS(t)->xattr_get(t, a->ino, a->name, &old, &oldlen);
	free(old);
	if (rc == -ENOENT)
		return -ENODATA;
	if (rc || (rc = OPS(t)->xattr_del(t, a->ino, a->name)))
		return rc;
	in.ctime = mfs_now();
	bump(&in);
	if ((rc = OPS(t)->inode_put(t, &in)))
		return rc;
	struct cl_rec cl = cl_make(CL_REMOVEXATTR, a->c, &in);
	cl.xname = a->name;
	cl.xname_len = (uint32_t)strlen(a->name);
	return OPS(t)->changelog_append(t, &cl);
}

int ns_removexattr(struct mfs_volume *v, const struct mfs_ctx *c, uint64_t ino, const char *name)
{
	int rc = check_xattr_name(name);
	if (rc)
		return rc == -EOPNOTSUPP ? -ENODATA : rc;
	struct xattr_args a = { c, ino, name, NULL, 0, 0, NULL, 0 };
	return ns_txn_run(v, do_removexattr, &a);
}

/* ---------------------------------------------------------------- data */

struct io_args {
	struct mfs_volume *v;
	const struct mfs_ctx *c;
	uint64_t ino, off;
	size_t size;
	char *buf;
	ssize_t got;
	const struct ns_extent *ext;
	size_t n;
	const struct timespec *mtime;
	struct inode_rec *out;
	const struct prov_gen *gen; /* a close after writing: make a version */
	uint64_t version;
};

static int do_read(struct store_txn *t, void *arg)
{
	struct io_args *a = arg;
	struct inode_rec in;
	int rc = OPS(t)->inode_get(t, a->ino, &in, false);
	if (rc)
		return rc;
	if (S_ISDIR(in.mode))
		return -EISDIR;
	if (!S_ISREG(in.mode))
		return -EINVAL;
	struct bs_config cfg = bscfg(a->v);
	a->got = bs_read(t, &cfg, &in, a->off, a->size, a->buf);
	return a->got < 0 ? (int)a->got : 0;
}

ssize_t ns_read(struct mfs_volume *v, uint64_t ino, uint64_t off, size_t size, char *buf)
{
	struct io_args a = { .v = v, .ino = ino, .off = off, .size = size, .buf = buf };
	int rc = ro_run(v, do_read, &a);
	return rc ? rc : a.got;
}

static int do_write(struct store_txn *t, void *arg)
{
	struct io_args *a = arg;
	struct inode_rec in;
	int rc = OPS(t)->inode_get(t, a->ino, &in, true);
	if (rc)
		return rc;
	if (!S_ISREG(in.mode))
		return -EINVAL;
	struct bs_config cfg = bscfg(a->v);
	if ((rc = bs_write(t, &cfg, &in, a->ext, a->n)))
		return rc;
	struct timespec now = mfs_now();
	in.mtime = a->mtime ? *a->mtime : now;
	in.ctime = now;
	bump(&in);
	if ((rc = OPS(t)->inode_put(t, &in)))
		return rc;
	struct cl_rec cl = cl_make(CL_WRITE, a->c, &in);
	if (a->gen)
		rc = prov_txn_generate(t, &in, a->gen, a->ext, a->n, &cl, &a->version);
	if (!rc)
		rc = OPS(t)->changelog_append(t, &cl);
	if (!rc && a->out)
		*a->out = in;
	return rc;
}

static int do_generate(struct store_txn *t, void *arg)
{
	struct io_args *a = arg;
	struct inode_rec in;
	int rc = OPS(t)->inode_get(t, a->ino, &in, true);
	if (rc)
		return rc;
	if (!S_ISREG(in.mode))
		return -EINVAL;
	return prov_txn_generate(t, &in, a->gen, NULL, 0, NULL, &a->version);
}

static int write_common(struct io_args *a)
{
	uint64_t bytes = 0;
	for (size_t i = 0; i < a->n; i++) {
		if (a->ext[i].off + a->ext[i].len < a->ext[i].off ||
		    a->ext[i].off + a->ext[i].len > (uint64_t)INT64_MAX)
			return -EFBIG;
		bytes += a->ext[i].len;
	}
	/* the bytes go to the log and later to a table file */
	int rc = space_check(a->v, 2 * bytes);
	if (rc)
		return rc;
	return ns_txn_run(a->v, do_write, a);
}

int ns_write_version(struct mfs_volume *v, const struct mfs_ctx *c, uint64_t ino,
		     const struct ns_extent *ext, size_t n, const struct timespec *mtime,
		     const struct prov_gen *gen, uint64_t *version)
{
	if (gen && gen->n == 0)
		gen = NULL;
	struct io_args a = { .v = v, .c = c, .ino = ino, .ext = ext, .n = n, .mtime = mtime, .gen = gen };
	int rc;
	if (n)
		rc = write_common(&a);
	else if (gen)
		rc = ns_txn_run(v, do_generate, &a);
	else
		return 0;
	if (!rc && version)
		*version = a.version;
	return rc;
}

int ns_write(struct mfs_volume *v, const struct mfs_ctx *c, uint64_t ino,
	     const struct ns_extent *ext, size_t n, const struct timespec *mtime,
	     struct inode_rec *out)
{
	if (n == 0)
		return 0;
	struct io_args a = { .v = v, .c = c, .ino = ino, .ext = ext, .n = n, .mtime = mtime, .out = out };
	return write_common(&a);
}

struct falloc_args {
	struct mfs_volume *v;
	const struct mfs_ctx *c;
	uint64_t ino, off, len;
	int mode;
};

static int do_fallocate(struct store_txn *t, void *arg)
{
	struct falloc_args *a = arg;
	struct inode_rec in;
	int rc = OPS(t)->inode_get(t, a->ino, &in, true);
	if (rc)
		return rc;
	if (S_ISDIR(in.mode))
		return -EISDIR;
	if (!S_ISREG(in.mode))
		return -ENODEV;
	struct bs_config cfg = bscfg(a->v);
	uint64_t end = a->off + a->len;
	bool changed = false;
	if (a->mode & (FALLOC_FL_PUNCH_HOLE | FALLOC_FL_ZERO_RANGE)) {
		if ((rc = bs_punch(t, &cfg, &in, a->off, a->len)))
			return rc;
		changed = true;
	}
	if (!(a->mode & FALLOC_FL_KEEP_SIZE) && end > in.size) {
		if ((rc = bs_truncate(t, &cfg, &in, end)))
			return rc;
		changed = true;
	}
	if (!changed)
		return 0;
	struct timespec now = mfs_now();
	in.mtime = in.ctime = now;
	bump(&in);
	if ((rc = OPS(t)->inode_put(t, &in)))
		return rc;
	struct cl_rec cl = cl_make(CL_WRITE, a->c, &in);
	return OPS(t)->changelog_append(t, &cl);
}

int ns_fallocate(struct mfs_volume *v, const struct mfs_ctx *c, uint64_t ino, int mode,
		 uint64_t off, uint64_t len)
{
	if (len == 0)
		return -EINVAL;
	if (off + len < off || off + len > (uint64_t)INT64_MAX)
		return -EFBIG;
	int known = FALLOC_FL_KEEP_SIZE | FALLOC_FL_PUNCH_HOLE | FALLOC_FL_ZERO_RANGE;
	if (mode & ~known)
		return -EOPNOTSUPP;
	if ((mode & FALLOC_FL_PUNCH_HOLE) && !(mode & FALLOC_FL_KEEP_SIZE))
		return -EOPNOTSUPP; /* as Linux: a hole is punched keeping the size */
	if ((mode & FALLOC_FL_PUNCH_HOLE) && (mode & FALLOC_FL_ZERO_RANGE))
		return -EOPNOTSUPP;
	struct falloc_args a = { v, c, ino, off, len, mode };
	return ns_txn_run(v, do_fallocate, &a);
}

int ns_sync(struct mfs_volume *v)
{
	return v->store->ops->sync(v->store);
}

/* ---------------------------------------------------------------- reclaim */

struct reclaim_args {
	struct mfs_volume *v;
	uint64_t ino;
	bool freed;
};

struct name_list {
	char **v;
	size_t n, cap;
};

static int collect_name(void *arg, const char *name, size_t len)
{
	struct name_list *l = arg;
	if (mfs_array_reserve(&l->v, &l->cap, l->n, sizeof *l->v))
		return -ENOMEM;
	l->v[l->n] = strndup(name, len);
	if (!l->v[l->n])
		return -ENOMEM;
	l->n++;
	return 0;
}

/* A change of which mounts have a file open (ns_hold, ns_unhold): the
 * hold itself, and a write of the inode row that changes it (next_cookie,
 * unused by files otherwise, counts these changes). A cluster that checks
 * at commit only the rows a transaction wrote, not the ones it locked
 * (Galera certifies write sets; a lock taken on one node does not reach
 * the others), then sees a hold, a release and a free of one file made at
 * once on two nodes conflict, and one of them is retried: a free cannot
 * miss a hold taken meanwhile elsewhere. */
static int hold_change(struct store_txn *t, struct inode_rec *in, bool on)
{
	in->next_cookie++;
	int rc = OPS(t)->inode_put(t, in);
	return rc ? rc : OPS(t)->hold(t, in->ino, on);
}

/* Frees an inode with no name left that this mount no longer uses, unless
 * another mount has it open: that one frees it at its last close. */
int ns_reclaim_txn(struct store_txn *t, struct mfs_volume *v, uint64_t ino, bool *freed)
{
	struct inode_rec in = { 0 };
	uint32_t others = 0;
	*freed = false;
	int rc = OPS(t)->inode_get_held ? OPS(t)->inode_get_held(t, ino, &in, &others)
					: OPS(t)->inode_get(t, ino, &in, true);
	if (rc && rc != -ENOENT)
		return rc;
	bool gone = rc == -ENOENT;
	bool keep = gone || in.nlink > 0 || others > 0;
	/* the xattrs' names read before the first write, so that a store
	 * that defers writes sends them all at the commit */
	struct name_list l = { 0 };
	if (!keep)
		rc = OPS(t)->xattr_list(t, ino, collect_name, &l);
	else
		rc = 0;
	/* this mount's hold goes; a freed inode's row goes with it */
	if (!rc && OPS(t)->hold)
		rc = keep && !gone ? hold_change(t, &in, false) : OPS(t)->hold(t, ino, false);
	for (size_t i = 0; i < l.n; i++) {
		if (!rc)
			rc = OPS(t)->xattr_del(t, ino, l.v[i]);
		free(l.v[i]);
	}
	free(l.v);
	if (rc)
		return rc;
	if (keep) /* open on another mount: the last of them to close it frees it */
		return others > 0 && in.nlink == 0 ? 0 : OPS(t)->orphan_del(t, ino);
	struct bs_config cfg = bscfg(v);
	if ((rc = bs_free(t, &cfg, &in)) || (rc = OPS(t)->inode_del(t, ino)) || (rc = OPS(t)->orphan_del(t, ino)))
		return rc;
	*freed = true;
	return 0;
}

static int do_reclaim(struct store_txn *t, void *arg)
{
	struct reclaim_args *a = arg;
	return ns_reclaim_txn(t, a->v, a->ino, &a->freed);
}

int ns_reclaim(struct mfs_volume *v, uint64_t ino)
{
	struct reclaim_args a = { v, ino, false };
	return ns_txn_run(v, do_reclaim, &a);
}

struct hold_args {
	uint64_t ino;
	struct inode_rec *out;
};

static int do_hold(struct store_txn *t, void *arg)
{
	struct hold_args *a = arg;
	int rc = OPS(t)->inode_get(t, a->ino, a->out, true);
	return rc ? rc : hold_change(t, a->out, true);
}

int ns_hold(struct mfs_volume *v, uint64_t ino, struct inode_rec *out)
{
	if (!v->store->ops->hold || v->readonly)
		return ns_getattr(v, ino, out);
	struct hold_args a = { ino, out };
	return ns_txn_run(v, do_hold, &a);
}

int ns_unhold(struct mfs_volume *v, uint64_t ino, bool *freed)
{
	*freed = false;
	if (!v->store->ops->hold || v->readonly)
		return 0;
	struct reclaim_args a = { v, ino, false };
	int rc = ns_txn_run(v, do_reclaim, &a);
	*freed = a.freed;
	return rc;
}

int ns_reclaim_orphans(struct mfs_volume *v)
{
	struct u64_vec l = { 0 };
	int rc = v->store->ops->orphan_list(v->store, u64_vec_collect, &l);
	int freed = 0;
	for (size_t i = 0; i < l.n && !rc; i++) {
		rc = ns_reclaim(v, l.v[i]);
		freed++;
	}
	free(l.v);
	return rc ? rc : freed;
}
