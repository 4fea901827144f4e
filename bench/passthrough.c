/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Pass-through FUSE filesystem: mirrors a source directory at a mount point.
 * The benchmarks in bench/ run it as the FUSE-overhead reference: the same
 * workload on the source directory, through this mount and through metafs
 * tells what FUSE itself costs and what metafs adds to it.
 *
 * For that comparison to be fair the FUSE settings are those of fs/daemon.c:
 * low-level API, multi-threaded loop (16 threads, 4 idle), entries and
 * attributes cached for a second, keep_cache on open, 1 MiB max_write and
 * readahead, parallel directory operations, cached symlinks, no writeback
 * cache, default_permissions, and reads answered from a buffer (no splice).
 *
 * An inode is known by its file handle (name_to_handle_at), not by an open
 * fd as in libfuse's passthrough_ll example: the benchmarks create a million
 * files and the open-file limit here is 20 000. Each operation opens an fd
 * from the handle (open_by_handle_at, which needs CAP_DAC_READ_SEARCH: run as
 * root) and closes it when done; only open files and directories hold an fd,
 * until release. A handle names the inode rather than a path, so renames
 * need no bookkeeping.
 *
 *   bench_passthrough SOURCE MOUNTPOINT [-f] [-d] [-o OPTIONS]
 *
 * Without -f it goes to the background once the mount is up;
 * fusermount3 -u MOUNTPOINT stops it.
 */
#define FUSE_USE_VERSION 312
#include <fuse_lowlevel.h>

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/xattr.h>
#include <unistd.h>

#define TIMEOUT 1.0
#define MAX_WRITE (1u << 20)
#define MAX_MOUNTS 64
#define PROC_PATH_MAX 32
/* an fd on a mount: never blocks nor becomes a controlling terminal */
#define MOUNT_FD_FLAGS (O_RDONLY | O_NONBLOCK | O_NOCTTY | O_NOFOLLOW)
/* room for any handle the kernel hands out */
#define HANDLE_BUF (sizeof(struct file_handle) + MAX_HANDLE_SZ)

struct pt_inode {
	struct pt_inode *next; /* hash chain */
	dev_t dev;
	ino_t ino;
	uint64_t nlookup; /* the kernel's references; freed at zero */
	/* The inode number was deleted and reused while the kernel still held
	 * this one: it no longer matches lookups and waits for its forget. */
	bool stale;
	bool symlink;
	int mnt_fd; /* any fd on the inode's filesystem, for open_by_handle_at */
	struct file_handle *fh; /* stored right after the struct */
};

struct pt_dir {
	DIR *dp;
	off_t offset; /* where the next readdir continues */
	struct dirent *entry; /* read but not yet returned: it did not fit */
};

static struct {
	/* SOURCE, open for the whole run; open_by_handle_at does not take an
	 * O_PATH fd for the filesystem, so this one is opened for reading */
	int root_fd;
	int root_mount_id;
	struct pt_inode *root;
	pthread_mutex_t lock; /* the table, lookup counts and the mount list */
	struct pt_inode **buckets;
	size_t nbuckets; /* a power of two */
	size_t count;
	struct { int id, fd; } mounts[MAX_MOUNTS]; /* mounts below SOURCE met so far */
	int nmounts;
} pt = { .root_fd = -1, .lock = PTHREAD_MUTEX_INITIALIZER };

/* ---------------------------------------------------------------- inodes */

static struct pt_inode *get_inode(fuse_ino_t ino)
{
	return ino == FUSE_ROOT_ID ? pt.root : (struct pt_inode *)(uintptr_t)ino;
}

static fuse_ino_t ino_of(struct pt_inode *in)
{
	return in == pt.root ? FUSE_ROOT_ID : (fuse_ino_t)(uintptr_t)in;
}

static size_t bucket_of(dev_t dev, ino_t ino, size_t nbuckets)
{
	uint64_t h = (uint64_t)ino * 0x9E3779B97F4A7C15ull ^ (uint64_t)dev * 0xC2B2AE3D27D4EB4Full;
	return (size_t)(h ^ (h >> 29)) & (nbuckets - 1);
}

static bool same_handle(const struct file_handle *a, const struct file_handle *b)
{
	return a->handle_type == b->handle_type && a->handle_bytes == b->handle_bytes &&
	       !memcmp(a->f_handle, b->f_handle, a->handle_bytes);
}

static struct pt_inode *inode_new(const struct file_handle *fh, int mnt_fd, const struct stat *st)
{
	struct pt_inode *in = malloc(sizeof *in + sizeof *fh + fh->handle_bytes);
	if (!in)
		return NULL;
	*in = (struct pt_inode){ .dev = st->st_dev, .ino = st->st_ino, .nlookup = 1,
				 .symlink = S_ISLNK(st->st_mode), .mnt_fd = mnt_fd };
	in->fh = (struct file_handle *)(in + 1);
	memcpy(in->fh, fh, sizeof *fh + fh->handle_bytes);
	return in;
}

/* Called with pt.lock held; on failure the table just stays crowded. */
static void table_grow(void)
{
	size_t n = pt.nbuckets * 2;
	struct pt_inode **b = calloc(n, sizeof *b);
	if (!b)
		return;
	for (size_t i = 0; i < pt.nbuckets; i++) {
		struct pt_inode *in = pt.buckets[i];
		while (in) {
			struct pt_inode *next = in->next;
			size_t k = bucket_of(in->dev, in->ino, n);
			in->next = b[k];
			b[k] = in;
			in = next;
		}
	}
	free(pt.buckets);
	pt.buckets = b;
	pt.nbuckets = n;
}

/*
 * Finds or adds the inode with this handle and stat, counting one kernel
 * reference. The handle is compared too: ext4 reuses the number of a deleted
 * inode, and the kernel may not have forgotten the old one yet.
 */
static struct pt_inode *inode_ref(const struct file_handle *fh, int mnt_fd, const struct stat *st)
{
	if (st->st_dev == pt.root->dev && st->st_ino == pt.root->ino)
		return pt.root; /* never forgotten, so not counted */
	pthread_mutex_lock(&pt.lock);
	size_t k = bucket_of(st->st_dev, st->st_ino, pt.nbuckets);
	struct pt_inode *in;
	for (in = pt.buckets[k]; in; in = in->next)
		if (!in->stale && in->dev == st->st_dev && in->ino == st->st_ino)
			break;
	if (in && same_handle(in->fh, fh)) {
		in->nlookup++;
		pthread_mutex_unlock(&pt.lock);
		return in;
	}
	struct pt_inode *n = inode_new(fh, mnt_fd, st);
	if (n) {
		if (in)
			in->stale = true;
		n->next = pt.buckets[k];
		pt.buckets[k] = n;
		if (++pt.count > pt.nbuckets)
			table_grow();
	}
	pthread_mutex_unlock(&pt.lock);
	return n;
}

static void inode_unref(struct pt_inode *in, uint64_t n)
{
	if (in == pt.root)
		return;
	pthread_mutex_lock(&pt.lock);
	in->nlookup = n < in->nlookup ? in->nlookup - n : 0;
	if (in->nlookup) {
		pthread_mutex_unlock(&pt.lock);
		return;
	}
	struct pt_inode **pp = &pt.buckets[bucket_of(in->dev, in->ino, pt.nbuckets)];
	while (*pp != in)
		pp = &(*pp)->next;
	*pp = in->next;
	pt.count--;
	pthread_mutex_unlock(&pt.lock);
	free(in);
}

/*
 * An fd on the filesystem of mount_id, for open_by_handle_at. A mount met
 * for the first time (SOURCE has mounts below it) keeps an fd on the node at
 * (dirfd, name), or on dirfd itself when name is empty; not an O_PATH one,
 * which open_by_handle_at refuses.
 */
static int mount_fd(int mount_id, int dirfd, const char *name)
{
	if (mount_id == pt.root_mount_id)
		return pt.root_fd;
	pthread_mutex_lock(&pt.lock);
	for (int i = 0; i < pt.nmounts; i++)
		if (pt.mounts[i].id == mount_id) {
			int fd = pt.mounts[i].fd;
			pthread_mutex_unlock(&pt.lock);
			return fd;
		}
	pthread_mutex_unlock(&pt.lock);

	int fd;
	if (name[0]) {
		fd = openat(dirfd, name, MOUNT_FD_FLAGS);
	} else {
		char path[PROC_PATH_MAX];
		snprintf(path, sizeof path, "/proc/self/fd/%d", dirfd);
		fd = open(path, MOUNT_FD_FLAGS & ~O_NOFOLLOW);
	}
	if (fd < 0)
		return -1;
	pthread_mutex_lock(&pt.lock);
	for (int i = 0; i < pt.nmounts; i++)
		if (pt.mounts[i].id == mount_id) { /* another thread was quicker */
			int keep = pt.mounts[i].fd;
			pthread_mutex_unlock(&pt.lock);
			close(fd);
			return keep;
		}
	if (pt.nmounts == MAX_MOUNTS) {
		pthread_mutex_unlock(&pt.lock);
		close(fd);
		errno = EMFILE;
		return -1;
	}
	pt.mounts[pt.nmounts].id = mount_id;
	pt.mounts[pt.nmounts].fd = fd;
	pt.nmounts++;
	pthread_mutex_unlock(&pt.lock);
	return fd;
}

/* An fd on the inode for one operation; put_fd closes it. */
static int inode_open(struct pt_inode *in, int flags)
{
	if (in == pt.root && flags == O_PATH)
		return pt.root_fd;
	return open_by_handle_at(in->mnt_fd, in->fh, flags);
}

/* Keeps errno, so that error paths can close first and report after. */
static void put_fd(int fd)
{
	int e = errno;
	if (fd >= 0 && fd != pt.root_fd)
		close(fd);
	errno = e;
}

static void proc_path(char *buf, int fd)
{
	snprintf(buf, PROC_PATH_MAX, "/proc/self/fd/%d", fd);
}

/*
 * Fills e for the node at (dirfd, name), or for dirfd itself when name is
 * empty, and counts the reference the reply gives the kernel. Returns 0 or
 * an errno.
 */
static int do_lookup(int dirfd, const char *name, struct fuse_entry_param *e)
{
	union {
		struct file_handle fh;
		char buf[HANDLE_BUF];
	} h;
	int mount_id;
	int flags = name[0] ? 0 : AT_EMPTY_PATH; /* 0: a symlink's own handle */
	h.fh.handle_bytes = MAX_HANDLE_SZ;
	memset(e, 0, sizeof *e);
	if (name_to_handle_at(dirfd, name, &h.fh, &mount_id, flags) < 0 ||
	    fstatat(dirfd, name, &e->attr, flags | AT_SYMLINK_NOFOLLOW) < 0)
		return errno;
	int mfd = mount_fd(mount_id, dirfd, name);
	if (mfd < 0)
		return errno;
	struct pt_inode *in = inode_ref(&h.fh, mfd, &e->attr);
	if (!in)
		return ENOMEM;
	e->ino = ino_of(in);
	e->attr_timeout = TIMEOUT;
	e->entry_timeout = TIMEOUT;
	return 0;
}

/* Replies with a counted entry; a reply the kernel did not take is uncounted. */
static void reply_entry(fuse_req_t req, const struct fuse_entry_param *e)
{
	if (fuse_reply_entry(req, e) != 0)
		inode_unref(get_inode(e->ino), 1);
}

/*
 * Nodes are made by this process, as root; a caller other than root (with
 * -o allow_other) gets them as the kernel would have given them: its uid, and
 * its gid unless the parent directory is setgid.
 */
static int give_to_caller(fuse_req_t req, int dirfd, const char *name, int fd)
{
	const struct fuse_ctx *c = fuse_req_ctx(req);
	if (c->uid == 0 && c->gid == 0)
		return 0;
	struct stat ds;
	if (fstat(dirfd, &ds) < 0)
		return -1;
	gid_t gid = (ds.st_mode & S_ISGID) ? (gid_t)-1 : c->gid;
	if (fd >= 0)
		return fchown(fd, c->uid, gid);
	return fchownat(dirfd, name, c->uid, gid, AT_SYMLINK_NOFOLLOW);
}

static bool caller_is_root(fuse_req_t req)
{
	const struct fuse_ctx *c = fuse_req_ctx(req);
	return c->uid == 0 && c->gid == 0;
}

/* ---------------------------------------------------------------- lifecycle */

static void pt_init(void *userdata, struct fuse_conn_info *conn)
{
	conn->max_write = MAX_WRITE;
	conn->max_readahead = MAX_WRITE;
	if (conn->capable & FUSE_CAP_PARALLEL_DIROPS)
		conn->want |= FUSE_CAP_PARALLEL_DIROPS;
	if (conn->capable & FUSE_CAP_CACHE_SYMLINKS)
		conn->want |= FUSE_CAP_CACHE_SYMLINKS;
	/* as in metafs: writes reach the daemon with their caller */
	conn->want &= ~FUSE_CAP_WRITEBACK_CACHE;
}

/* ---------------------------------------------------------------- names */

static void pt_lookup(fuse_req_t req, fuse_ino_t parent, const char *name)
{
	int dfd = inode_open(get_inode(parent), O_PATH);
	if (dfd < 0) {
		fuse_reply_err(req, errno);
		return;
	}
	struct fuse_entry_param e;
	int err = do_lookup(dfd, name, &e);
	put_fd(dfd);
	if (err == ENOENT) {
		/* a negative entry the kernel may cache, as metafs gives */
		struct fuse_entry_param neg = { .ino = 0, .entry_timeout = TIMEOUT };
		fuse_reply_entry(req, &neg);
	} else if (err) {
		fuse_reply_err(req, err);
	} else {
		reply_entry(req, &e);
	}
}

static void pt_forget(fuse_req_t req, fuse_ino_t ino, uint64_t nlookup)
{
	inode_unref(get_inode(ino), nlookup);
	fuse_reply_none(req);
}

static void pt_forget_multi(fuse_req_t req, size_t count, struct fuse_forget_data *forgets)
{
	for (size_t i = 0; i < count; i++)
		inode_unref(get_inode(forgets[i].ino), forgets[i].nlookup);
	fuse_reply_none(req);
}

enum node_kind { NODE_FILE, NODE_DIR, NODE_SYMLINK };

static void make_node(fuse_req_t req, fuse_ino_t parent, const char *name, enum node_kind kind,
		      mode_t mode, dev_t rdev, const char *target)
{
	int dfd = inode_open(get_inode(parent), O_PATH);
	if (dfd < 0) {
		fuse_reply_err(req, errno);
		return;
	}
	int rc;
	if (kind == NODE_DIR)
		rc = mkdirat(dfd, name, mode);
	else if (kind == NODE_SYMLINK)
		rc = symlinkat(target, dfd, name);
	else
		rc = mknodat(dfd, name, mode, rdev);
	if (rc == 0)
		rc = give_to_caller(req, dfd, name, -1);
	struct fuse_entry_param e;
	int err = rc < 0 ? errno : do_lookup(dfd, name, &e);
	put_fd(dfd);
	if (err)
		fuse_reply_err(req, err);
	else
		reply_entry(req, &e);
}

static void pt_mknod(fuse_req_t req, fuse_ino_t parent, const char *name, mode_t mode, dev_t rdev)
{
	make_node(req, parent, name, NODE_FILE, mode, rdev, NULL);
}

static void pt_mkdir(fuse_req_t req, fuse_ino_t parent, const char *name, mode_t mode)
{
	make_node(req, parent, name, NODE_DIR, mode, 0, NULL);
}

static void pt_symlink(fuse_req_t req, const char *target, fuse_ino_t parent, const char *name)
{
	make_node(req, parent, name, NODE_SYMLINK, 0, 0, target);
}

static void pt_link(fuse_req_t req, fuse_ino_t ino, fuse_ino_t newparent, const char *newname)
{
	int fd = inode_open(get_inode(ino), O_PATH);
	if (fd < 0) {
		fuse_reply_err(req, errno);
		return;
	}
	int dfd = inode_open(get_inode(newparent), O_PATH);
	if (dfd < 0) {
		put_fd(fd);
		fuse_reply_err(req, errno);
		return;
	}
	/* AT_EMPTY_PATH links the fd's inode itself (needs CAP_DAC_READ_SEARCH) */
	struct fuse_entry_param e;
	int err = linkat(fd, "", dfd, newname, AT_EMPTY_PATH) < 0 ? errno : do_lookup(dfd, newname, &e);
	put_fd(dfd);
	put_fd(fd);
	if (err)
		fuse_reply_err(req, err);
	else
		reply_entry(req, &e);
}

static void remove_name(fuse_req_t req, fuse_ino_t parent, const char *name, int flags)
{
	int dfd = inode_open(get_inode(parent), O_PATH);
	if (dfd < 0) {
		fuse_reply_err(req, errno);
		return;
	}
	int err = unlinkat(dfd, name, flags) < 0 ? errno : 0;
	put_fd(dfd);
	fuse_reply_err(req, err);
}

static void pt_unlink(fuse_req_t req, fuse_ino_t parent, const char *name)
{
	remove_name(req, parent, name, 0);
}

static void pt_rmdir(fuse_req_t req, fuse_ino_t parent, const char *name)
{
	remove_name(req, parent, name, AT_REMOVEDIR);
}

static void pt_rename(fuse_req_t req, fuse_ino_t parent, const char *name, fuse_ino_t newparent,
		      const char *newname, unsigned int flags)
{
	int from = inode_open(get_inode(parent), O_PATH);
	if (from < 0) {
		fuse_reply_err(req, errno);
		return;
	}
	int to = newparent == parent ? from : inode_open(get_inode(newparent), O_PATH);
	if (to < 0) {
		put_fd(from);
		fuse_reply_err(req, errno);
		return;
	}
	int err = renameat2(from, name, to, newname, flags) < 0 ? errno : 0;
	if (to != from)
		put_fd(to);
	put_fd(from);
	fuse_reply_err(req, err);
}

/* ---------------------------------------------------------------- attributes */

static void pt_getattr(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	struct stat st;
	int err = 0;
	if (fi) {
		/* the kernel passes a handle only for regular files, whose fh is an fd */
		if (fstat((int)fi->fh, &st) < 0)
			err = errno;
	} else {
		int fd = inode_open(get_inode(ino), O_PATH);
		if (fd < 0 || fstatat(fd, "", &st, AT_EMPTY_PATH | AT_SYMLINK_NOFOLLOW) < 0)
			err = errno;
		put_fd(fd);
	}
	if (err)
		fuse_reply_err(req, err);
	else
		fuse_reply_attr(req, &st, TIMEOUT);
}

static struct timespec set_time(int valid, int now_bit, int set_bit, struct timespec t)
{
	if (valid & now_bit)
		return (struct timespec){ .tv_nsec = UTIME_NOW };
	if (valid & set_bit)
		return t;
	return (struct timespec){ .tv_nsec = UTIME_OMIT };
}

static void pt_setattr(fuse_req_t req, fuse_ino_t ino, struct stat *attr, int valid,
		       struct fuse_file_info *fi)
{
	struct pt_inode *in = get_inode(ino);
	int fd = inode_open(in, O_PATH);
	if (fd < 0) {
		fuse_reply_err(req, errno);
		return;
	}
	/* an O_PATH fd allows neither fchmod nor ftruncate: its /proc path does */
	char path[PROC_PATH_MAX];
	proc_path(path, fd);
	int rc = 0;
	if (valid & FUSE_SET_ATTR_MODE)
		rc = fi ? fchmod((int)fi->fh, attr->st_mode) : chmod(path, attr->st_mode);
	if (rc == 0 && (valid & (FUSE_SET_ATTR_UID | FUSE_SET_ATTR_GID))) {
		uid_t uid = (valid & FUSE_SET_ATTR_UID) ? attr->st_uid : (uid_t)-1;
		gid_t gid = (valid & FUSE_SET_ATTR_GID) ? attr->st_gid : (gid_t)-1;
		rc = fchownat(fd, "", uid, gid, AT_EMPTY_PATH | AT_SYMLINK_NOFOLLOW);
	}
	if (rc == 0 && (valid & FUSE_SET_ATTR_SIZE))
		rc = fi ? ftruncate((int)fi->fh, attr->st_size) : truncate(path, attr->st_size);
	if (rc == 0 && (valid & (FUSE_SET_ATTR_ATIME | FUSE_SET_ATTR_MTIME))) {
		struct timespec tv[2] = {
			set_time(valid, FUSE_SET_ATTR_ATIME_NOW, FUSE_SET_ATTR_ATIME, attr->st_atim),
			set_time(valid, FUSE_SET_ATTR_MTIME_NOW, FUSE_SET_ATTR_MTIME, attr->st_mtim),
		};
		if (fi)
			rc = futimens((int)fi->fh, tv);
		else if (in->symlink)
			/* the /proc path would lead to the symlink's target */
			rc = utimensat(fd, "", tv, AT_EMPTY_PATH | AT_SYMLINK_NOFOLLOW);
		else
			rc = utimensat(AT_FDCWD, path, tv, 0);
	}
	struct stat st;
	if (rc == 0)
		rc = fstatat(fd, "", &st, AT_EMPTY_PATH | AT_SYMLINK_NOFOLLOW);
	int err = rc < 0 ? errno : 0;
	put_fd(fd);
	if (err)
		fuse_reply_err(req, err);
	else
		fuse_reply_attr(req, &st, TIMEOUT);
}

static void pt_readlink(fuse_req_t req, fuse_ino_t ino)
{
	int fd = inode_open(get_inode(ino), O_PATH);
	if (fd < 0) {
		fuse_reply_err(req, errno);
		return;
	}
	char buf[PATH_MAX + 1];
	ssize_t n = readlinkat(fd, "", buf, sizeof buf);
	int err = n < 0 ? errno : 0;
	put_fd(fd);
	if (err) {
		fuse_reply_err(req, err);
	} else if ((size_t)n == sizeof buf) {
		fuse_reply_err(req, ENAMETOOLONG);
	} else {
		buf[n] = '\0';
		fuse_reply_readlink(req, buf);
	}
}

static void pt_statfs(fuse_req_t req, fuse_ino_t ino)
{
	struct statvfs sv;
	if (fstatvfs(pt.root_fd, &sv) < 0)
		fuse_reply_err(req, errno);
	else
		fuse_reply_statfs(req, &sv);
}

/* ---------------------------------------------------------------- files */

static void pt_open(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	/* open_by_handle_at opens with the caller's flags in one call, the same
	 * as an open of the /proc path of an O_PATH fd would */
	int fd = inode_open(get_inode(ino), fi->flags & ~(O_NOFOLLOW | O_CREAT | O_EXCL));
	if (fd < 0) {
		fuse_reply_err(req, errno);
		return;
	}
	fi->fh = (uint64_t)fd;
	fi->keep_cache = 1; /* as metafs: pages stay valid across opens */
	if (fuse_reply_open(req, fi) != 0)
		close(fd); /* the kernel will not release what it did not get */
}

static void pt_create(fuse_req_t req, fuse_ino_t parent, const char *name, mode_t mode,
		      struct fuse_file_info *fi)
{
	int dfd = inode_open(get_inode(parent), O_PATH);
	if (dfd < 0) {
		fuse_reply_err(req, errno);
		return;
	}
	int flags = (fi->flags | O_CREAT) & ~O_NOFOLLOW;
	int fd;
	bool made = true;
	if (caller_is_root(req) || (flags & O_EXCL)) {
		fd = openat(dfd, name, flags, mode);
	} else {
		/* only a file made here changes owner: tell it from one that was there */
		fd = openat(dfd, name, flags | O_EXCL, mode);
		if (fd < 0 && errno == EEXIST) {
			made = false;
			fd = openat(dfd, name, flags & ~O_CREAT);
		}
	}
	struct fuse_entry_param e;
	int err = fd < 0 ? errno : 0;
	if (!err && made && give_to_caller(req, dfd, name, fd) < 0)
		err = errno;
	if (!err)
		err = do_lookup(fd, "", &e);
	put_fd(dfd);
	if (err) {
		put_fd(fd);
		fuse_reply_err(req, err);
		return;
	}
	fi->fh = (uint64_t)fd;
	fi->keep_cache = 1;
	if (fuse_reply_create(req, &e, fi) != 0) {
		inode_unref(get_inode(e.ino), 1);
		close(fd);
	}
}

static void pt_read(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off, struct fuse_file_info *fi)
{
	/* a buffer, not splice: metafs answers reads the same way */
	char *buf = malloc(size ? size : 1);
	if (!buf) {
		fuse_reply_err(req, ENOMEM);
		return;
	}
	ssize_t n = pread((int)fi->fh, buf, size, off);
	if (n < 0)
		fuse_reply_err(req, errno);
	else
		fuse_reply_buf(req, buf, (size_t)n);
	free(buf);
}

static void pt_write(fuse_req_t req, fuse_ino_t ino, const char *data, size_t size, off_t off,
		     struct fuse_file_info *fi)
{
	ssize_t n = pwrite((int)fi->fh, data, size, off);
	if (n < 0)
		fuse_reply_err(req, errno);
	else
		fuse_reply_write(req, (size_t)n);
}

static void pt_flush(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	/* nothing is buffered here; answering keeps the round trip metafs has */
	fuse_reply_err(req, 0);
}

static void pt_release(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	close((int)fi->fh);
	fuse_reply_err(req, 0);
}

static void pt_fsync(fuse_req_t req, fuse_ino_t ino, int datasync, struct fuse_file_info *fi)
{
	int rc = datasync ? fdatasync((int)fi->fh) : fsync((int)fi->fh);
	fuse_reply_err(req, rc < 0 ? errno : 0);
}

static void pt_fallocate(fuse_req_t req, fuse_ino_t ino, int mode, off_t offset, off_t length,
			 struct fuse_file_info *fi)
{
	int rc = fallocate((int)fi->fh, mode, offset, length);
	fuse_reply_err(req, rc < 0 ? errno : 0);
}

/* ---------------------------------------------------------------- directories */

static struct pt_dir *dir_of(struct fuse_file_info *fi)
{
	return (struct pt_dir *)(uintptr_t)fi->fh;
}

static void pt_opendir(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	struct pt_dir *d = calloc(1, sizeof *d);
	if (!d) {
		fuse_reply_err(req, ENOMEM);
		return;
	}
	int fd = inode_open(get_inode(ino), O_RDONLY | O_DIRECTORY);
	if (fd < 0 || !(d->dp = fdopendir(fd))) {
		put_fd(fd);
		free(d);
		fuse_reply_err(req, errno);
		return;
	}
	fi->fh = (uint64_t)(uintptr_t)d;
	if (fuse_reply_open(req, fi) != 0) {
		closedir(d->dp);
		free(d);
	}
}

static bool is_dot_or_dotdot(const char *name)
{
	return name[0] == '.' && (name[1] == '\0' || (name[1] == '.' && name[2] == '\0'));
}

/* smallest direntplus record: entry_out, dirent header, a name of one byte */
#define DIRENTPLUS_MIN 160

static void do_readdir(fuse_req_t req, size_t size, off_t off, struct fuse_file_info *fi, bool plus)
{
	struct pt_dir *d = dir_of(fi);
	char *buf = malloc(size ? size : 1);
	/* the entries counted for this reply, to uncount if it is not taken */
	struct pt_inode **counted = plus ? malloc((size / DIRENTPLUS_MIN + 1) * sizeof *counted) : NULL;
	if (!buf || (plus && !counted)) {
		free(buf);
		free(counted);
		fuse_reply_err(req, ENOMEM);
		return;
	}
	size_t ncounted = 0;
	if (off != d->offset) {
		seekdir(d->dp, off);
		d->entry = NULL;
		d->offset = off;
	}
	char *p = buf;
	size_t rem = size;
	int err = 0;
	for (;;) {
		if (!d->entry) {
			errno = 0;
			d->entry = readdir(d->dp);
			if (!d->entry) {
				err = errno; /* 0 at the end */
				break;
			}
		}
		const char *name = d->entry->d_name;
		off_t next = d->entry->d_off;
		struct fuse_entry_param e = { 0 };
		size_t len;
		if (plus) {
			if (!is_dot_or_dotdot(name)) {
				err = do_lookup(dirfd(d->dp), name, &e);
				if (err == ENOENT) {
					/* gone since readdir: listed without attributes */
					memset(&e, 0, sizeof e);
					err = 0;
				} else if (err) {
					break;
				}
			}
			if (!e.ino) {
				e.attr.st_ino = d->entry->d_ino;
				e.attr.st_mode = (mode_t)d->entry->d_type << 12;
			}
			len = fuse_add_direntry_plus(req, p, rem, name, &e, next);
		} else {
			struct stat st = { .st_ino = d->entry->d_ino, .st_mode = (mode_t)d->entry->d_type << 12 };
			len = fuse_add_direntry(req, p, rem, name, &st, next);
		}
		if (len > rem) {
			/* did not fit: kept for the next call */
			if (e.ino)
				inode_unref(get_inode(e.ino), 1);
			break;
		}
		if (e.ino && e.ino != FUSE_ROOT_ID)
			counted[ncounted++] = get_inode(e.ino);
		p += len;
		rem -= len;
		d->entry = NULL;
		d->offset = next;
	}
	/* entries already in the buffer are counted: an error can only be
	 * reported when there are none */
	if (err && rem == size) {
		fuse_reply_err(req, err);
	} else if (fuse_reply_buf(req, buf, size - rem) != 0) {
		for (size_t i = 0; i < ncounted; i++)
			inode_unref(counted[i], 1);
	}
	free(counted);
	free(buf);
}

static void pt_readdir(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off, struct fuse_file_info *fi)
{
	do_readdir(req, size, off, fi, false);
}

static void pt_readdirplus(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off,
			   struct fuse_file_info *fi)
{
	do_readdir(req, size, off, fi, true);
}

static void pt_releasedir(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	struct pt_dir *d = dir_of(fi);
	closedir(d->dp);
	free(d);
	fuse_reply_err(req, 0);
}

static void pt_fsyncdir(fuse_req_t req, fuse_ino_t ino, int datasync, struct fuse_file_info *fi)
{
	int fd = dirfd(dir_of(fi)->dp);
	int rc = datasync ? fdatasync(fd) : fsync(fd);
	fuse_reply_err(req, rc < 0 ? errno : 0);
}

/* ---------------------------------------------------------------- xattrs */

/*
 * The *xattr calls on /proc/self/fd/N follow that link to the inode itself,
 * a symlink included (the l* calls would act on the /proc link instead).
 */

static void pt_setxattr(fuse_req_t req, fuse_ino_t ino, const char *name, const char *value,
			size_t size, int flags)
{
	int fd = inode_open(get_inode(ino), O_PATH);
	if (fd < 0) {
		fuse_reply_err(req, errno);
		return;
	}
	char path[PROC_PATH_MAX];
	proc_path(path, fd);
	int err = setxattr(path, name, value, size, flags) < 0 ? errno : 0;
	put_fd(fd);
	fuse_reply_err(req, err);
}

static void pt_removexattr(fuse_req_t req, fuse_ino_t ino, const char *name)
{
	int fd = inode_open(get_inode(ino), O_PATH);
	if (fd < 0) {
		fuse_reply_err(req, errno);
		return;
	}
	char path[PROC_PATH_MAX];
	proc_path(path, fd);
	int err = removexattr(path, name) < 0 ? errno : 0;
	put_fd(fd);
	fuse_reply_err(req, err);
}

/* getxattr and listxattr: size 0 asks for the length only. */
static void xattr_get(fuse_req_t req, fuse_ino_t ino, const char *name, size_t size)
{
	char *buf = size ? malloc(size) : NULL;
	if (size && !buf) {
		fuse_reply_err(req, ENOMEM);
		return;
	}
	int fd = inode_open(get_inode(ino), O_PATH);
	if (fd < 0) {
		free(buf);
		fuse_reply_err(req, errno);
		return;
	}
	char path[PROC_PATH_MAX];
	proc_path(path, fd);
	ssize_t n = name ? getxattr(path, name, buf, size) : listxattr(path, buf, size);
	int err = n < 0 ? errno : 0;
	put_fd(fd);
	if (err)
		fuse_reply_err(req, err);
	else if (size == 0)
		fuse_reply_xattr(req, (size_t)n);
	else
		fuse_reply_buf(req, buf, (size_t)n);
	free(buf);
}

static void pt_getxattr(fuse_req_t req, fuse_ino_t ino, const char *name, size_t size)
{
	xattr_get(req, ino, name, size);
}

static void pt_listxattr(fuse_req_t req, fuse_ino_t ino, size_t size)
{
	xattr_get(req, ino, NULL, size);
}

static const struct fuse_lowlevel_ops pt_ops = {
	.init = pt_init,
	.lookup = pt_lookup,
	.forget = pt_forget,
	.forget_multi = pt_forget_multi,
	.getattr = pt_getattr,
	.setattr = pt_setattr,
	.readlink = pt_readlink,
	.mknod = pt_mknod,
	.mkdir = pt_mkdir,
	.symlink = pt_symlink,
	.link = pt_link,
	.unlink = pt_unlink,
	.rmdir = pt_rmdir,
	.rename = pt_rename,
	.open = pt_open,
	.create = pt_create,
	.read = pt_read,
	.write = pt_write,
	.flush = pt_flush,
	.release = pt_release,
	.fsync = pt_fsync,
	.fallocate = pt_fallocate,
	.opendir = pt_opendir,
	.readdir = pt_readdir,
	.readdirplus = pt_readdirplus,
	.releasedir = pt_releasedir,
	.fsyncdir = pt_fsyncdir,
	.statfs = pt_statfs,
	.setxattr = pt_setxattr,
	.getxattr = pt_getxattr,
	.listxattr = pt_listxattr,
	.removexattr = pt_removexattr,
};

/* ---------------------------------------------------------------- setup */

static int usage(void)
{
	fprintf(stderr, "usage: bench_passthrough SOURCE MOUNTPOINT [-f] [-d] [-o OPTIONS]\n"
			"  -f  stay in the foreground\n"
			"  -d  FUSE debug output (implies -f)\n"
			"  -o  FUSE mount options\n");
	return 2;
}

/* Opens SOURCE and makes its root inode; checks that handles work there. */
static int open_source(const char *source)
{
	pt.root_fd = open(source, O_RDONLY | O_DIRECTORY);
	if (pt.root_fd < 0) {
		fprintf(stderr, "bench_passthrough: %s: %s\n", source, strerror(errno));
		return -1;
	}
	union {
		struct file_handle fh;
		char buf[HANDLE_BUF];
	} h;
	h.fh.handle_bytes = MAX_HANDLE_SZ;
	struct stat st;
	if (fstat(pt.root_fd, &st) < 0 ||
	    name_to_handle_at(pt.root_fd, "", &h.fh, &pt.root_mount_id, AT_EMPTY_PATH) < 0) {
		fprintf(stderr, "bench_passthrough: %s: no file handles here: %s\n", source, strerror(errno));
		return -1;
	}
	int fd = open_by_handle_at(pt.root_fd, &h.fh, O_PATH);
	if (fd < 0) {
		fprintf(stderr, "bench_passthrough: %s: cannot open by handle (%s); this needs "
				"CAP_DAC_READ_SEARCH, run it as root\n", source, strerror(errno));
		return -1;
	}
	close(fd);
	pt.root = inode_new(&h.fh, pt.root_fd, &st);
	pt.nbuckets = 1u << 16;
	pt.buckets = calloc(pt.nbuckets, sizeof *pt.buckets);
	if (!pt.root || !pt.buckets) {
		fprintf(stderr, "bench_passthrough: out of memory\n");
		return -1;
	}
	return 0;
}

static void free_all(void)
{
	for (size_t i = 0; i < pt.nbuckets; i++) {
		struct pt_inode *in = pt.buckets[i];
		while (in) {
			struct pt_inode *next = in->next;
			free(in);
			in = next;
		}
	}
	free(pt.buckets);
	free(pt.root);
	for (int i = 0; i < pt.nmounts; i++)
		close(pt.mounts[i].fd);
	if (pt.root_fd >= 0)
		close(pt.root_fd);
}

/* SOURCE names the mount (fsname), with ',' and '\' escaped in the option. */
static int add_mount_options(struct fuse_args *args, const char *source)
{
	char *opt = malloc(strlen(source) * 2 + 64);
	if (!opt)
		return -1;
	char *q = opt + sprintf(opt, "-ofsname=");
	for (const char *s = source; *s; s++) {
		if (*s == ',' || *s == '\\')
			*q++ = '\\';
		*q++ = *s;
	}
	/* default_permissions always: the kernel checks permissions, as for metafs */
	strcpy(q, ",subtype=benchpt,default_permissions");
	int rc = fuse_opt_add_arg(args, opt);
	free(opt);
	return rc;
}

int main(int argc, char **argv)
{
	const char *source = NULL, *mountpoint = NULL;
	bool foreground = false, debug = false, bad_usage = false;
	int status = 1;
	char *mnt_abs = NULL;
	struct fuse_session *se = NULL;
	struct fuse_args args = FUSE_ARGS_INIT(0, NULL);
	if (fuse_opt_add_arg(&args, argv[0]) != 0)
		goto out;
	for (int i = 1; i < argc && !bad_usage; i++) {
		const char *a = argv[i];
		if (!strcmp(a, "-f")) {
			foreground = true;
		} else if (!strcmp(a, "-d")) {
			debug = foreground = true;
		} else if (!strncmp(a, "-o", 2)) {
			const char *opts = a[2] ? a + 2 : (i + 1 < argc ? argv[++i] : NULL);
			if (!opts)
				bad_usage = true;
			else if (fuse_opt_add_arg(&args, "-o") != 0 || fuse_opt_add_arg(&args, opts) != 0)
				goto out;
		} else if (a[0] == '-' || (source && mountpoint)) {
			bad_usage = true;
		} else if (!source) {
			source = a;
		} else {
			mountpoint = a;
		}
	}
	if (bad_usage || !mountpoint) {
		status = usage();
		goto out;
	}
	if ((debug && fuse_opt_add_arg(&args, "-d") != 0) || add_mount_options(&args, source) != 0)
		goto out;
	/* the daemon moves to /, and unmounts by this path when signalled */
	mnt_abs = realpath(mountpoint, NULL);
	if (!mnt_abs) {
		fprintf(stderr, "bench_passthrough: %s: %s\n", mountpoint, strerror(errno));
		goto out;
	}

	/* modes arrive with the caller's umask applied already */
	umask(0);
	if (open_source(source) < 0)
		goto out;
	se = fuse_session_new(&args, &pt_ops, sizeof pt_ops, NULL);
	if (!se)
		goto out;
	if (fuse_set_signal_handlers(se) != 0)
		goto out;
	if (fuse_session_mount(se, mnt_abs) != 0) {
		fuse_remove_signal_handlers(se);
		goto out;
	}
	/* the mount is up: a script can use it once the parent exits */
	if (fuse_daemonize(foreground) != 0) {
		fuse_session_unmount(se);
		fuse_remove_signal_handlers(se);
		goto out;
	}
	struct fuse_loop_config *cfg = fuse_loop_cfg_create();
	if (cfg) {
		fuse_loop_cfg_set_max_threads(cfg, 16);
		fuse_loop_cfg_set_idle_threads(cfg, 4);
		/* a signal ends the loop as an unmount does: both are a normal stop */
		status = fuse_session_loop_mt(se, cfg) < 0;
		fuse_loop_cfg_destroy(cfg);
	}
	fuse_session_unmount(se);
	fuse_remove_signal_handlers(se);
out:
	if (se)
		fuse_session_destroy(se);
	fuse_opt_free_args(&args);
	free(mnt_abs);
	free_all();
	return status;
}
