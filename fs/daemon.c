/* SPDX-License-Identifier: Apache-2.0 */
/*
 * FUSE low-level operations: each request becomes one namespace call.
 *
 * On a volume only this daemon writes (the embedded store), every change
 * goes through the kernel, which updates its own caches as it goes: entries
 * and attributes are cached for the timeouts (a second by default), file
 * pages are kept across opens (keep_cache), symlinks are cached.
 *
 * On a shared volume (a cluster store other mounts write too) the daemon
 * also follows the changelog and tells the kernel what other mounts changed
 * (invalidate.c), and gives close-to-open consistency: an open asks the
 * store for the file's version, and the kernel keeps its pages only when
 * the version is the one they were read at. With -o strict nothing is
 * cached past the operation that fetched it.
 */
#include "fs.h"
#include "capture.h"
#include "invalidate.h"
#include "locks.h"
#include "lockwait.h"
#include "nodes.h"
#include "common.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

/* A file's pending writes are committed once they pass this many bytes. */
#define WRITE_BUFFER_MAX (8u << 20)
#define MAX_WRITE (1u << 20)
#define HOLD_LOCKS 64

struct mfs_fs {
	struct mfs_volume *vol;
	struct fuse_session *se;
	struct node_table nodes;
	bool mounted;
	struct capture *cap; /* NULL: lineage is not captured (-o nolineage) */
	double entry_timeout, attr_timeout, negative_timeout;
	bool shared; /* other mounts may change the volume */
	bool strict;
	unsigned inval_poll_ms;
	struct inval *inval; /* following other mounts' changes (shared) */
	struct lockwait *lockwait; /* lock requests waiting (locks in the store) */
	/* shared volumes: an inode's first open here and its last close, with
	 * their transactions, one at a time (see hold_open) */
	pthread_mutex_t hold_lock[HOLD_LOCKS];
};

/* An open file handle (fi->fh), for provenance: who opened it, who wrote
 * through it since the last version. Guarded by its node's lock. */
#define HANDLE_WRITERS 8
struct handle {
	bool capture; /* lineage is recorded for this file */
	bool dirty; /* written (or truncated) since the last version */
	/* opened with O_TRUNC: a version at the last close if no write made one
	 * (a shell opens `> f` and closes the first descriptor before the
	 * command writes through its copy) */
	bool truncated, versioned;
	bool created; /* made by its open (O_CREAT): its content starts empty */
	struct cap_proc *opener; /* NULL when not resolved */
	uint32_t opener_tid; /* the thread that opened it */
	struct cap_proc *writers[HANDLE_WRITERS];
	size_t nwriters;
	uint32_t last_tid; /* the thread of the last write, already counted */
	struct handle *next; /* in its node's list (node.handles) */
};

static struct mfs_fs *FS(fuse_req_t req)
{
	return fuse_req_userdata(req);
}

static struct mfs_ctx req_ctx(fuse_req_t req)
{
	const struct fuse_ctx *c = fuse_req_ctx(req);
	return (struct mfs_ctx){ c->uid, c->gid, (uint32_t)c->pid };
}

static void to_stat(const struct inode_rec *in, struct stat *st)
{
	memset(st, 0, sizeof *st);
	st->st_ino = in->ino;
	st->st_mode = in->mode;
	st->st_nlink = in->nlink;
	st->st_uid = in->uid;
	st->st_gid = in->gid;
	st->st_rdev = in->rdev;
	st->st_size = (off_t)in->size;
	st->st_blksize = 4096;
	/* a sparse file's holes take no space, but chunks are not counted
	 * here: report the size rounded up, as most tools expect */
	st->st_blocks = (blkcnt_t)((in->size + 511) / 512);
	st->st_atim = in->atime;
	st->st_mtim = in->mtime;
	st->st_ctim = in->ctime;
}

/* Shows pending writes in the attributes: size and mtime. */
static void overlay_attr(struct mfs_fs *fs, struct inode_rec *in)
{
	struct node *n = node_get(&fs->nodes, in->ino, false);
	if (!n)
		return;
	pthread_mutex_lock(&n->lock);
	if (n->buf.n) {
		if (n->buf.end > in->size)
			in->size = n->buf.end;
		in->mtime = n->buf.mtime;
	}
	pthread_mutex_unlock(&n->lock);
	node_put(&fs->nodes, n, 0, 0);
}

static void release_node(struct mfs_fs *fs, struct node *n, uint64_t forget, uint32_t close)
{
	uint64_t ino = n->ino;
	if (node_put(&fs->nodes, n, forget, close)) {
		int rc = ns_reclaim(fs->vol, ino);
		if (rc < 0)
			log_error("inode %llu: cannot free after its last use: %s",
				  (unsigned long long)ino, strerror(-rc));
	}
}

/* Remembers where a node was found, for provenance: its directory, and
 * whether it is noise (a noisy name, or inside a noisy directory). */
static void note_parent(struct mfs_fs *fs, struct node *n, uint64_t parent, const char *name, uint32_t mode)
{
	if (!fs->cap || !name)
		return;
	bool noise = capture_noise_name(name, S_ISDIR(mode));
	if (!noise) {
		struct node *p = node_get(&fs->nodes, parent, false);
		if (p) {
			noise = p->noise;
			node_put(&fs->nodes, p, 0, 0);
		}
	}
	char *copy = strdup(name);
	pthread_mutex_lock(&n->lock);
	n->parent = parent;
	free(n->name);
	n->name = copy;
	n->noise = noise;
	pthread_mutex_unlock(&n->lock);
}

/* Name parent/name of ino is gone: the node no longer knows its name. */
static void forget_name(struct mfs_fs *fs, uint64_t ino, uint64_t parent, const char *name)
{
	struct node *n = fs->cap && ino ? node_get(&fs->nodes, ino, false) : NULL;
	if (!n)
		return;
	pthread_mutex_lock(&n->lock);
	if (n->name && n->parent == parent && !strcmp(n->name, name)) {
		free(n->name);
		n->name = NULL;
	}
	pthread_mutex_unlock(&n->lock);
	release_node(fs, n, 0, 0);
}

/* n->lock held: the content changed without a version being made */
static void content_changed_locked(struct node *n)
{
	n->content_gen++;
	n->pversion = 0;
}

static void content_changed(struct mfs_fs *fs, uint64_t ino)
{
	struct node *n = fs->cap ? node_get(&fs->nodes, ino, false) : NULL;
	if (!n)
		return;
	pthread_mutex_lock(&n->lock);
	content_changed_locked(n);
	pthread_mutex_unlock(&n->lock);
	release_node(fs, n, 0, 0);
}

/* Replies with an entry and counts the kernel's new reference. */
static void reply_entry(fuse_req_t req, const struct inode_rec *in, uint64_t parent, const char *name)
{
	struct mfs_fs *fs = FS(req);
	struct node *n = node_get(&fs->nodes, in->ino, true);
	if (!n) {
		fuse_reply_err(req, ENOMEM);
		return;
	}
	note_parent(fs, n, parent, name, in->mode);
	struct fuse_entry_param e = { .ino = in->ino, .generation = 1,
				      .attr_timeout = fs->attr_timeout, .entry_timeout = fs->entry_timeout };
	struct inode_rec a = *in;
	overlay_attr(fs, &a);
	to_stat(&a, &e.attr);
	node_add_lookup(&fs->nodes, n);
	if (fuse_reply_entry(req, &e) != 0)
		release_node(fs, n, 1, 0); /* the kernel did not take it */
	else
		release_node(fs, n, 0, 0);
}

/* Commits a node's pending writes and, with g, the version a close after
 * writing makes, in one transaction; the caller holds n->lock. */
static int commit_locked(struct mfs_fs *fs, struct node *n, const struct prov_gen *g)
{
	struct wbuf *b = &n->buf;
	if (!b->n && !g)
		return 0;
	struct ns_extent *ext = NULL;
	if (b->n && !(ext = malloc(b->n * sizeof *ext)))
		return -ENOMEM;
	for (size_t i = 0; i < b->n; i++)
		ext[i] = (struct ns_extent){ b->v[i].off, b->v[i].len, b->v[i].data };
	uint64_t version = 0;
	int rc = ns_write_version(fs->vol, &b->ctx, n->ino, ext, b->n, &b->mtime, g, &version);
	free(ext);
	content_changed_locked(n);
	if (rc == 0 && g) {
		n->pversion = version;
		n->vlast = version;
		n->vlast_known = true;
	}
	if (rc < 0)
		log_error("inode %llu: cannot commit %zu buffered bytes%s: %s", (unsigned long long)n->ino,
			  b->bytes, g ? " and a new version" : "", strerror(-rc));
	/* on failure the bytes are dropped after the error is reported to the
	 * caller of close/fsync, as a local filesystem reports EIO once */
	wbuf_clear(b);
	return rc;
}

static int flush_locked(struct mfs_fs *fs, struct node *n)
{
	return commit_locked(fs, n, NULL);
}

static int flush_ino(struct mfs_fs *fs, uint64_t ino)
{
	struct node *n = node_get(&fs->nodes, ino, false);
	if (!n)
		return 0;
	pthread_mutex_lock(&n->lock);
	int rc = flush_locked(fs, n);
	pthread_mutex_unlock(&n->lock);
	release_node(fs, n, 0, 0);
	return rc;
}

/* ---------------------------------------------------------------- handles */

/* Decides at open whether the file's lineage is recorded. */
static bool handle_captured(struct mfs_fs *fs, struct node *n)
{
	if (!fs->cap)
		return false;
	pthread_mutex_lock(&n->lock);
	bool noise = n->noise;
	uint64_t parent = n->parent ? n->parent : MFS_ROOT_INO;
	pthread_mutex_unlock(&n->lock);
	return !noise && capture_dir_on(fs->cap, parent);
}

static void handle_free(struct mfs_fs *fs, struct handle *h)
{
	if (!h)
		return;
	capture_put(fs->cap, h->opener);
	for (size_t i = 0; i < h->nwriters; i++)
		capture_put(fs->cap, h->writers[i]);
	free(h);
}

/* Lists h among n's open files (none when h is NULL). */
static void handle_attach(struct node *n, struct handle *h)
{
	if (!h)
		return;
	pthread_mutex_lock(&n->lock);
	h->next = n->handles;
	n->handles = h;
	pthread_mutex_unlock(&n->lock);
}

/* n->lock held */
static void handle_detach_locked(struct node *n, struct handle *h)
{
	for (struct handle **p = &n->handles; *p; p = &(*p)->next) {
		if (*p == h) {
			*p = h->next;
			return;
		}
	}
}

/* Frees h, open on n, that was not handed to the kernel. */
static void handle_close(struct mfs_fs *fs, struct node *n, struct handle *h)
{
	if (!h)
		return;
	pthread_mutex_lock(&n->lock);
	handle_detach_locked(n, h);
	pthread_mutex_unlock(&n->lock);
	handle_free(fs, h);
}

/* Counts p (referenced, handed over) as a writer of h; n->lock held. */
static void handle_add_writer(struct mfs_fs *fs, struct handle *h, struct cap_proc *p)
{
	if (!p)
		return;
	for (size_t i = 0; i < h->nwriters; i++) {
		if (h->writers[i] == p) {
			capture_put(fs->cap, p);
			return;
		}
	}
	if (h->nwriters == HANDLE_WRITERS) {
		/* the oldest writer gives way: eight processes writing one
		 * open file between two closes is past what lineage shows */
		capture_put(fs->cap, h->writers[0]);
		memmove(h->writers, h->writers + 1, (HANDLE_WRITERS - 1) * sizeof *h->writers);
		h->nwriters--;
	}
	h->writers[h->nwriters++] = p;
}

/* A write (or truncation) through h by thread tid: who to charge. The
 * process is read before n->lock is taken. The thread that opened the
 * file is its opener still, unless the opener is a shell or job runner,
 * which opens a file to exec a program in its place: /proc is read again
 * only then. (A program that execs another between two of its writes is
 * not told apart, as between writes after the first.) */
static struct cap_proc *writer_of(struct mfs_fs *fs, struct handle *h, uint32_t tid)
{
	if (!h || !h->capture || tid == __atomic_load_n(&h->last_tid, __ATOMIC_RELAXED))
		return NULL;
	if (h->opener && tid == h->opener_tid && !h->opener->runner)
		return capture_ref(fs->cap, h->opener);
	return capture_proc(fs->cap, tid);
}

/* n->lock held */
static void handle_wrote(struct mfs_fs *fs, struct handle *h, struct cap_proc *p, uint32_t tid)
{
	if (!h || !h->capture)
		return;
	h->dirty = true;
	if (p) {
		handle_add_writer(fs, h, p);
		__atomic_store_n(&h->last_tid, tid, __ATOMIC_RELAXED);
	} else if (tid != __atomic_load_n(&h->last_tid, __ATOMIC_RELAXED) && h->opener) {
		/* no caller to charge (writeback, a process gone): the opener */
		handle_add_writer(fs, h, capture_ref(fs->cap, h->opener));
	}
}

/* Commits n's pending writes and, when h was written since its last
 * version, the new version, in one transaction; n->lock held. last: the
 * handle's release. */
static int flush_handle_locked(struct mfs_fs *fs, struct node *n, struct handle *h, bool last)
{
	if (h && last && h->truncated && !h->versioned)
		h->dirty = true;
	if (!h || !h->dirty)
		return flush_locked(fs, n);
	if (!h->nwriters && h->opener)
		handle_add_writer(fs, h, capture_ref(fs->cap, h->opener));
	const struct prov_proc *procs[HANDLE_WRITERS];
	bool record[HANDLE_WRITERS];
	struct cap_proc *feeders[CAPTURE_FEEDERS];
	struct prov_job_uses jobs[HANDLE_WRITERS + CAPTURE_FEEDERS];
	/* the uses waiting to be recorded go first, in the same transaction
	 * (the version may derive from some of them), taken first: a writer
	 * whose record comes with one of its uses is not recorded twice */
	struct cap_uses waiting = { NULL, 0, NULL };
	if (h->nwriters)
		capture_take_uses(fs->cap, &waiting);
	size_t nf = capture_feeders(fs->cap, h->writers, h->nwriters, h->opener, feeders, CAPTURE_FEEDERS);
	struct prov_gen g;
	capture_gen(fs->cap, h->writers, h->nwriters, feeders, nf, procs, record, jobs, &g);
	g.parent = n->parent;
	g.name = n->name;
	/* only this daemon makes versions of a volume it does not share */
	g.current_known = n->vlast_known && !fs->shared;
	g.current = n->vlast;
	g.uses = waiting.uses;
	g.nuses = waiting.n;
	int rc = commit_locked(fs, n, &g);
	capture_uses_done(fs->cap, &waiting, rc);
	capture_gen_done(h->writers, h->nwriters, rc);
	for (size_t i = 0; i < nf; i++)
		capture_put(fs->cap, feeders[i]);
	for (size_t i = 0; i < h->nwriters; i++)
		capture_put(fs->cap, h->writers[i]);
	h->nwriters = 0;
	h->dirty = false;
	h->versioned = true;
	__atomic_store_n(&h->last_tid, 0, __ATOMIC_RELAXED);
	return rc;
}

/* ---------------------------------------------------------------- lifecycle */

static void op_init(void *userdata, struct fuse_conn_info *conn)
{
	conn->max_write = MAX_WRITE;
	conn->max_readahead = MAX_WRITE;
	if (conn->capable & FUSE_CAP_PARALLEL_DIROPS)
		conn->want |= FUSE_CAP_PARALLEL_DIROPS; /* every op is its own transaction */
	if (conn->capable & FUSE_CAP_CACHE_SYMLINKS)
		conn->want |= FUSE_CAP_CACHE_SYMLINKS;
	/* no writeback cache: writes reach the daemon with their caller, and
	 * the daemon's own buffer batches them into transactions */
	conn->want &= ~FUSE_CAP_WRITEBACK_CACHE;
	/* a shared volume: the kernel drops a file's pages when a fresh look
	 * at its attributes shows another mtime */
	struct mfs_fs *fs = userdata;
	if (fs->shared && (conn->capable & FUSE_CAP_AUTO_INVAL_DATA))
		conn->want |= FUSE_CAP_AUTO_INVAL_DATA;
	/* locks: in the store when other mounts must see them, else the
	 * kernel's own */
	unsigned locks = FUSE_CAP_POSIX_LOCKS | FUSE_CAP_FLOCK_LOCKS;
	if (ns_locks_shared(fs->vol))
		conn->want |= conn->capable & locks;
	else
		conn->want &= ~locks;
}

static void flush_each(struct node *n, void *arg)
{
	struct mfs_fs *fs = arg;
	pthread_mutex_lock(&n->lock);
	flush_locked(fs, n);
	pthread_mutex_unlock(&n->lock);
}

static void op_destroy(void *userdata)
{
	struct mfs_fs *fs = userdata;
	nodes_each(&fs->nodes, flush_each, fs);
	/* inodes unlinked while in use: nothing can use them any more */
	int rc = ns_reclaim_orphans(fs->vol);
	if (rc < 0)
		log_error("cannot free unlinked inodes at unmount: %s", strerror(-rc));
	rc = ns_sync(fs->vol);
	if (rc < 0)
		log_error("cannot sync the volume at unmount: %s", strerror(-rc));
}

/* ---------------------------------------------------------------- names */

static void op_lookup(fuse_req_t req, fuse_ino_t parent, const char *name)
{
	struct inode_rec in;
	int rc = ns_lookup(FS(req)->vol, parent, name, &in);
	if (rc == -ENOENT) {
		/* a negative entry the kernel may cache */
		struct fuse_entry_param e = { .ino = 0, .entry_timeout = FS(req)->negative_timeout };
		fuse_reply_entry(req, &e);
		return;
	}
	if (rc)
		fuse_reply_err(req, -rc);
	else
		reply_entry(req, &in, parent, name);
}

static void op_forget(fuse_req_t req, fuse_ino_t ino, uint64_t nlookup)
{
	struct mfs_fs *fs = FS(req);
	struct node *n = node_get(&fs->nodes, ino, false);
	if (n)
		release_node(fs, n, nlookup, 0);
	fuse_reply_none(req);
}

static void op_forget_multi(fuse_req_t req, size_t count, struct fuse_forget_data *forgets)
{
	struct mfs_fs *fs = FS(req);
	for (size_t i = 0; i < count; i++) {
		struct node *n = node_get(&fs->nodes, forgets[i].ino, false);
		if (n)
			release_node(fs, n, forgets[i].nlookup, 0);
	}
	fuse_reply_none(req);
}

static void op_getattr(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	struct inode_rec in;
	int rc = ns_getattr(FS(req)->vol, ino, &in);
	if (rc) {
		fuse_reply_err(req, -rc);
		return;
	}
	overlay_attr(FS(req), &in);
	struct stat st;
	to_stat(&in, &st);
	fuse_reply_attr(req, &st, FS(req)->attr_timeout);
}

static void op_setattr(fuse_req_t req, fuse_ino_t ino, struct stat *attr, int to_set,
		       struct fuse_file_info *fi)
{
	struct mfs_fs *fs = FS(req);
	/* pending writes first: they would otherwise land after, and undo,
	 * an explicit size or mtime */
	int rc = flush_ino(fs, ino);
	if (rc) {
		fuse_reply_err(req, -rc);
		return;
	}
	struct ns_setattr r = { 0 };
	if (to_set & FUSE_SET_ATTR_MODE) {
		r.mask |= MFS_SET_MODE;
		r.mode = attr->st_mode;
	}
	if (to_set & FUSE_SET_ATTR_UID) {
		r.mask |= MFS_SET_UID;
		r.uid = attr->st_uid;
	}
	if (to_set & FUSE_SET_ATTR_GID) {
		r.mask |= MFS_SET_GID;
		r.gid = attr->st_gid;
	}
	if (to_set & FUSE_SET_ATTR_SIZE) {
		r.mask |= MFS_SET_SIZE;
		r.size = (uint64_t)attr->st_size;
	}
	if (to_set & FUSE_SET_ATTR_ATIME_NOW)
		r.mask |= MFS_SET_ATIME_NOW;
	else if (to_set & FUSE_SET_ATTR_ATIME) {
		r.mask |= MFS_SET_ATIME;
		r.atime = attr->st_atim;
	}
	if (to_set & FUSE_SET_ATTR_MTIME_NOW)
		r.mask |= MFS_SET_MTIME_NOW;
	else if (to_set & FUSE_SET_ATTR_MTIME) {
		r.mask |= MFS_SET_MTIME;
		r.mtime = attr->st_mtim;
	}
	if (to_set & FUSE_SET_ATTR_CTIME) {
		r.mask |= MFS_SET_CTIME;
		r.ctime = attr->st_ctim;
	}
	struct mfs_ctx c = req_ctx(req);
	struct inode_rec in;
	rc = ns_setattr(fs->vol, &c, ino, &r, &in);
	if (rc) {
		fuse_reply_err(req, -rc);
		return;
	}
	if (r.mask & (MFS_SET_SIZE | MFS_SET_MTIME | MFS_SET_MTIME_NOW))
		content_changed(fs, ino);
	struct handle *h = fi ? (struct handle *)(uintptr_t)fi->fh : NULL;
	if (h && (to_set & FUSE_SET_ATTR_SIZE)) {
		/* ftruncate: the content changed through this handle */
		struct node *n = node_get(&fs->nodes, ino, false);
		if (n) {
			struct cap_proc *p = writer_of(fs, h, c.pid);
			pthread_mutex_lock(&n->lock);
			handle_wrote(fs, h, p, c.pid);
			pthread_mutex_unlock(&n->lock);
			release_node(fs, n, 0, 0);
		}
	}
	struct stat st;
	to_stat(&in, &st);
	fuse_reply_attr(req, &st, fs->attr_timeout);
}

static void op_readlink(fuse_req_t req, fuse_ino_t ino)
{
	char buf[MFS_SYMLINK_MAX + 1];
	int rc = ns_readlink(FS(req)->vol, ino, buf, sizeof buf - 1);
	if (rc < 0) {
		fuse_reply_err(req, -rc);
		return;
	}
	buf[rc] = '\0';
	fuse_reply_readlink(req, buf);
}

static void op_mknod(fuse_req_t req, fuse_ino_t parent, const char *name, mode_t mode, dev_t rdev)
{
	struct mfs_ctx c = req_ctx(req);
	struct inode_rec in;
	int rc = ns_mknod(FS(req)->vol, &c, parent, name, mode, rdev, &in);
	if (rc)
		fuse_reply_err(req, -rc);
	else
		reply_entry(req, &in, parent, name);
}

static void op_mkdir(fuse_req_t req, fuse_ino_t parent, const char *name, mode_t mode)
{
	struct mfs_ctx c = req_ctx(req);
	struct inode_rec in;
	int rc = ns_mkdir(FS(req)->vol, &c, parent, name, mode, &in);
	if (rc)
		fuse_reply_err(req, -rc);
	else
		reply_entry(req, &in, parent, name);
}

static void op_symlink(fuse_req_t req, const char *target, fuse_ino_t parent, const char *name)
{
	struct mfs_ctx c = req_ctx(req);
	struct inode_rec in;
	int rc = ns_symlink(FS(req)->vol, &c, parent, name, target, &in);
	if (rc)
		fuse_reply_err(req, -rc);
	else
		reply_entry(req, &in, parent, name);
}

static void op_link(fuse_req_t req, fuse_ino_t ino, fuse_ino_t newparent, const char *newname)
{
	struct mfs_ctx c = req_ctx(req);
	struct inode_rec in;
	int rc = flush_ino(FS(req), ino);
	if (!rc)
		rc = ns_link(FS(req)->vol, &c, ino, newparent, newname, &in);
	if (rc)
		fuse_reply_err(req, -rc);
	else
		reply_entry(req, &in, newparent, newname);
}

/* An inode lost its last name: free it now, or when its last user goes. */
static void handle_unlinked(struct mfs_fs *fs, const struct ns_unlinked *g)
{
	if (!g->ino || g->nlink > 0)
		return;
	bool known;
	node_mark_unlinked(&fs->nodes, g->ino, &known);
	if (!known) {
		int rc = ns_reclaim(fs->vol, g->ino);
		if (rc < 0)
			log_error("inode %llu: cannot free: %s", (unsigned long long)g->ino, strerror(-rc));
	}
}

static void op_unlink(fuse_req_t req, fuse_ino_t parent, const char *name)
{
	struct mfs_ctx c = req_ctx(req);
	struct ns_unlinked g = { 0 };
	int rc = ns_unlink(FS(req)->vol, &c, parent, name, &g);
	if (!rc) {
		forget_name(FS(req), g.ino, parent, name);
		handle_unlinked(FS(req), &g);
	}
	fuse_reply_err(req, -rc);
}

static void op_rmdir(fuse_req_t req, fuse_ino_t parent, const char *name)
{
	struct mfs_ctx c = req_ctx(req);
	struct ns_unlinked g = { 0 };
	int rc = ns_rmdir(FS(req)->vol, &c, parent, name, &g);
	if (!rc)
		handle_unlinked(FS(req), &g);
	fuse_reply_err(req, -rc);
}

static void op_rename(fuse_req_t req, fuse_ino_t parent, const char *name, fuse_ino_t newparent,
		      const char *newname, unsigned int flags)
{
	struct mfs_ctx c = req_ctx(req);
	struct ns_unlinked g = { 0 };
	struct mfs_fs *fs = FS(req);
	int rc = ns_rename(fs->vol, &c, parent, name, newparent, newname, flags, &g);
	if (!rc) {
		forget_name(fs, g.ino, newparent, newname);
		handle_unlinked(fs, &g);
	}
	fuse_reply_err(req, -rc);
	if (rc || !fs->cap)
		return;
	/* the kernel moves its dentry without asking again: the node's
	 * directory is the new one, and a moved directory may have left or
	 * entered a subtree where capture is off */
	for (int side = 0; side < ((flags & RENAME_EXCHANGE) ? 2 : 1); side++) {
		uint64_t dir = side ? parent : newparent;
		const char *nm = side ? name : newname;
		struct inode_rec in;
		if (ns_lookup(fs->vol, dir, nm, &in))
			continue;
		if (S_ISDIR(in.mode))
			capture_invalidate(fs->cap);
		struct node *n = node_get(&fs->nodes, in.ino, false);
		if (n) {
			note_parent(fs, n, dir, nm, in.mode);
			release_node(fs, n, 0, 0);
		}
	}
}

/* ---------------------------------------------------------------- files */

/* Truncates at open (O_TRUNC): the kernel leaves it to the open
 * (atomic_o_trunc); the times change even when the file was empty. */
static int open_truncate(struct mfs_fs *fs, const struct mfs_ctx *c, uint64_t ino)
{
	int rc = flush_ino(fs, ino);
	struct ns_setattr r = { .mask = MFS_SET_SIZE | MFS_SET_MTIME_NOW, .size = 0 };
	/* the kernel leaves this to us along with the truncation; root is
	 * taken as holding CAP_FSETID */
	if (c->uid != 0)
		r.mask |= MFS_SET_KILL_PRIV;
	struct inode_rec in;
	if (!rc)
		rc = ns_setattr(fs->vol, c, ino, &r, &in);
	if (!rc)
		content_changed(fs, ino);
	return rc;
}

/* Content written (or truncated, or created) here with no version yet:
 * its version now, charged to its writers. An open file whose writes wait
 * for their version until its last close; a file its creator closed
 * unwritten (n->creator), whose empty version is made only now. A reader
 * may come first: a linker closes its new output and opens it again to
 * read, before the kernel has sent the release of the first open, and a
 * process may read a file another one is writing. n->lock held. */
static void settle_locked(struct mfs_fs *fs, struct node *n)
{
	for (struct handle *o = n->handles; o; o = o->next) {
		if ((o->truncated || o->created) && !o->versioned)
			o->dirty = true;
		if (o->dirty)
			flush_handle_locked(fs, n, o, false);
	}
	struct cap_proc *creator = n->creator;
	if (!creator)
		return;
	n->creator = NULL;
	if (n->creator_gen == n->content_gen && !n->pversion) {
		struct handle made = { .capture = true, .dirty = true, .opener = creator };
		flush_handle_locked(fs, n, &made, false);
	}
	capture_put(fs->cap, creator);
}

/* A file's creator closed it unwritten: remembered, for settle_locked.
 * n->lock held. */
static void park_creator_locked(struct mfs_fs *fs, struct node *n, struct handle *h)
{
	if (!h || !h->created || h->versioned || !h->opener)
		return;
	if (n->creator)
		capture_put(fs->cap, n->creator);
	n->creator = capture_ref(fs->cap, h->opener);
	n->creator_gen = n->content_gen;
}

/* nodes.drop: a node freed */
static void node_dropped(struct node *n, void *arg)
{
	struct mfs_fs *fs = arg;
	if (n->creator)
		capture_put(fs->cap, n->creator);
	n->creator = NULL;
}

/* The handle of an open of an existing file (NULL when lineage is not
 * recorded for it); records the use when it opens for reading. */
static struct handle *open_handle(struct mfs_fs *fs, struct node *n, const struct mfs_ctx *c, int flags)
{
	struct handle *h = NULL;
	if (!handle_captured(fs, n) || !(h = calloc(1, sizeof *h)))
		return NULL;
	h->capture = true;
	bool reads = (flags & O_ACCMODE) != O_WRONLY && !(flags & O_TRUNC);
	/* read now: a short-lived process may be gone by its last close, and
	 * a writer may close its standard input (a pipe) before it writes */
	h->opener = capture_proc(fs->cap, c->pid);
	h->opener_tid = c->pid;
	if (reads && h->opener) {
		/* opening for reading is the use: reads served from the page
		 * cache never reach the daemon. Content with no version yet
		 * gets it first (settle_locked), so that the reader uses a
		 * version its writer wrote, not one found without a writer. */
		pthread_mutex_lock(&n->lock);
		settle_locked(fs, n);
		uint64_t version = n->pversion, gen = n->content_gen;
		/* content whose version is not known may get one from the use
		 * (one first seen): until the use is done, a close here looks
		 * the newest number up instead of taking it from the node */
		if (!version)
			n->vlast_known = false;
		pthread_mutex_unlock(&n->lock);
		int rc = capture_used(fs->cap, h->opener, n->ino, !fs->shared, &version);
		if (rc)
			log_error("inode %llu: cannot record its use by pid %u: %s", (unsigned long long)n->ino,
				  c->pid, strerror(-rc));
		pthread_mutex_lock(&n->lock);
		if (!rc && n->content_gen == gen) {
			/* the version used is the newest */
			n->pversion = version;
			n->vlast = version;
			n->vlast_known = true;
		}
		pthread_mutex_unlock(&n->lock);
	}
	h->truncated = flags & O_TRUNC;
	handle_attach(n, h);
	return h;
}

/* Whether the kernel may keep the pages it caches for n (keep_cache).
 * Only this daemon changes a volume that is not shared. On a shared one
 * (close-to-open): the pages were read at the version the last open here
 * saw; when the store holds another, another mount changed the file, and
 * the kernel drops the pages and the attributes it holds (the size a read
 * stops at). in: the inode as the store holds it now. */
static bool keep_pages(struct mfs_fs *fs, struct node *n, const struct inode_rec *in)
{
	if (!fs->shared)
		return true;
	pthread_mutex_lock(&n->lock);
	bool same = n->page_version == in->version;
	n->page_version = in->version;
	if (!same)
		content_changed_locked(n);
	pthread_mutex_unlock(&n->lock);
	if (!same) {
		/* attributes only (offset -1): no page lock is taken, so this
		 * cannot wait for the open it answers */
		int rc = fuse_lowlevel_notify_inval_inode(fs->se, n->ino, -1, 0);
		if (rc && rc != -ENOENT)
			log_warn("inode %llu: cannot drop the kernel's attributes: %s",
				 (unsigned long long)n->ino, strerror(-rc));
	}
	return same;
}

/*
 * On a shared volume a file open here is registered in the store from its
 * first open to its last close here, so that another mount that removes
 * its last name leaves it to the last mount that has it open, as POSIX
 * keeps an unlinked file for its open descriptors. The registration and
 * its removal are each one transaction, under the inode's hold lock, so
 * that a close's removal cannot overtake the next open's registration.
 * in: the inode as the store holds it now (shared volumes only). created:
 * ns_create_held already registered it.
 */
static pthread_mutex_t *hold_lock_of(struct mfs_fs *fs, const struct node *n)
{
	return &fs->hold_lock[n->ino % HOLD_LOCKS];
}

static int hold_open(struct mfs_fs *fs, struct node *n, struct inode_rec *in, bool created)
{
	if (!fs->shared)
		return 0;
	pthread_mutex_t *l = hold_lock_of(fs, n);
	pthread_mutex_lock(l);
	int rc = created ? 0 : n->hopen ? ns_getattr(fs->vol, n->ino, in) : ns_hold(fs->vol, n->ino, in);
	if (!rc)
		n->hopen++;
	pthread_mutex_unlock(l);
	return rc;
}

static void hold_close(struct mfs_fs *fs, struct node *n)
{
	if (!fs->shared)
		return;
	pthread_mutex_t *l = hold_lock_of(fs, n);
	pthread_mutex_lock(l);
	if (n->hopen && --n->hopen == 0) {
		bool freed;
		int rc = ns_unhold(fs->vol, n->ino, &freed);
		if (rc)
			log_warn("inode %llu: cannot record its last close here (another mount may "
				 "keep it until this one unmounts): %s",
				 (unsigned long long)n->ino, strerror(-rc));
	}
	pthread_mutex_unlock(l);
}

static void op_open(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	struct mfs_fs *fs = FS(req);
	struct mfs_ctx c = req_ctx(req);
	if (fi->flags & O_TRUNC) {
		int rc = open_truncate(fs, &c, ino);
		if (rc) {
			fuse_reply_err(req, -rc);
			return;
		}
	}
	struct inode_rec in = { 0 };
	struct node *n = node_get(&fs->nodes, ino, true);
	if (!n) {
		fuse_reply_err(req, ENOMEM);
		return;
	}
	int rc = hold_open(fs, n, &in, false);
	if (rc) {
		release_node(fs, n, 0, 0);
		fuse_reply_err(req, -rc);
		return;
	}
	fi->keep_cache = keep_pages(fs, n, &in);
	struct handle *h = open_handle(fs, n, &c, fi->flags);
	fi->fh = (uintptr_t)h;
	node_add_open(&fs->nodes, n);
	if (fuse_reply_open(req, fi) != 0) {
		handle_close(fs, n, h);
		hold_close(fs, n);
		release_node(fs, n, 0, 1);
	} else {
		release_node(fs, n, 0, 0);
	}
}

static bool in_group(fuse_req_t req, uint32_t gid)
{
	if (fuse_req_ctx(req)->gid == gid)
		return true;
	gid_t groups[64];
	int n = fuse_req_getgroups(req, (int)MFS_ARRAY_LEN(groups), groups);
	for (int i = 0; i < n && i < (int)MFS_ARRAY_LEN(groups); i++)
		if (groups[i] == gid)
			return true;
	return false;
}

/* The kernel's permission check for opening an existing file, for a create
 * that found the name taken (see op_create). */
static int may_open(fuse_req_t req, const struct inode_rec *in, int flags)
{
	if (S_ISDIR(in->mode))
		return -EISDIR;
	if (!S_ISREG(in->mode))
		return -EEXIST; /* a FIFO or a device: not opened through a create */
	const struct fuse_ctx *c = fuse_req_ctx(req);
	int acc = flags & O_ACCMODE;
	uint32_t want = (acc != O_WRONLY ? 4 : 0) | (acc != O_RDONLY || (flags & O_TRUNC) ? 2 : 0);
	if (c->uid == 0)
		return 0;
	uint32_t bits = c->uid == in->uid ? in->mode >> 6 : in_group(req, in->gid) ? in->mode >> 3 : in->mode;
	return (bits & want) == want ? 0 : -EACCES;
}

static void op_create(fuse_req_t req, fuse_ino_t parent, const char *name, mode_t mode,
		      struct fuse_file_info *fi)
{
	struct mfs_fs *fs = FS(req);
	struct mfs_ctx c = req_ctx(req);
	struct inode_rec in;
	int rc = ns_create_held(fs->vol, &c, parent, name, mode, &in);
	bool existing = false;
	if (rc == -EEXIST && fs->shared && !(fi->flags & O_EXCL)) {
		/* another mount made the name after this kernel found it
		 * absent: open that file, as open(2) without O_EXCL does */
		existing = true;
		rc = ns_lookup(fs->vol, parent, name, &in);
		if (!rc)
			rc = may_open(req, &in, fi->flags);
		if (!rc && (fi->flags & O_TRUNC))
			rc = open_truncate(fs, &c, in.ino);
	}
	if (rc) {
		fuse_reply_err(req, -rc);
		return;
	}
	struct node *n = node_get(&fs->nodes, in.ino, true);
	if (!n) {
		if (!existing)
			ns_unhold(fs->vol, in.ino, &(bool){ false });
		fuse_reply_err(req, ENOMEM);
		return;
	}
	rc = hold_open(fs, n, &in, !existing);
	if (rc) {
		release_node(fs, n, 0, 0);
		fuse_reply_err(req, -rc);
		return;
	}
	note_parent(fs, n, parent, name, in.mode);
	struct handle *h = NULL;
	if (existing) {
		fi->keep_cache = keep_pages(fs, n, &in);
		h = open_handle(fs, n, &c, fi->flags);
	} else {
		if (handle_captured(fs, n) && (h = calloc(1, sizeof *h))) {
			/* a new file: nothing to use; a version when written,
			 * or, unwritten, when read (open_handle) */
			h->capture = true;
			h->created = true;
			h->opener = capture_proc(fs->cap, c.pid);
			h->opener_tid = c.pid;
			handle_attach(n, h);
		}
		pthread_mutex_lock(&n->lock);
		n->page_version = in.version;
		/* a new file: no version yet */
		n->vlast = 0;
		n->vlast_known = true;
		pthread_mutex_unlock(&n->lock);
		fi->keep_cache = 1;
	}
	fi->fh = (uintptr_t)h;
	struct fuse_entry_param e = { .ino = in.ino, .generation = 1,
				      .attr_timeout = fs->attr_timeout, .entry_timeout = fs->entry_timeout };
	to_stat(&in, &e.attr);
	node_add_lookup(&fs->nodes, n);
	node_add_open(&fs->nodes, n);
	if (fuse_reply_create(req, &e, fi) != 0) {
		handle_close(fs, n, h);
		hold_close(fs, n);
		release_node(fs, n, 1, 1);
	} else {
		release_node(fs, n, 0, 0);
	}
}

static void op_read(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off, struct fuse_file_info *fi)
{
	struct mfs_fs *fs = FS(req);
	char *buf = malloc(size ? size : 1);
	if (!buf) {
		fuse_reply_err(req, ENOMEM);
		return;
	}
	struct node *n = node_get(&fs->nodes, ino, false);
	ssize_t got;
	if (n) {
		/* held across the read so that a commit cannot slip between the
		 * committed bytes and the pending ones */
		pthread_mutex_lock(&n->lock);
		got = ns_read(fs->vol, ino, (uint64_t)off, size, buf);
		if (got >= 0 && n->buf.n) {
			uint64_t end = (uint64_t)off + size;
			if (end > n->buf.end)
				end = n->buf.end > (uint64_t)off ? n->buf.end : (uint64_t)off;
			size_t want = (size_t)(end - (uint64_t)off);
			if (want > (size_t)got) {
				memset(buf + got, 0, want - (size_t)got);
				got = (ssize_t)want;
			}
			wbuf_overlay(&n->buf, (uint64_t)off, buf, (size_t)got);
		}
		pthread_mutex_unlock(&n->lock);
		release_node(fs, n, 0, 0);
	} else {
		got = ns_read(fs->vol, ino, (uint64_t)off, size, buf);
	}
	if (got < 0)
		fuse_reply_err(req, (int)-got);
	else
		fuse_reply_buf(req, buf, (size_t)got);
	free(buf);
}

static void op_write(fuse_req_t req, fuse_ino_t ino, const char *data, size_t size, off_t off,
		     struct fuse_file_info *fi)
{
	struct mfs_fs *fs = FS(req);
	if (off < 0 || (uint64_t)off + size > (uint64_t)INT64_MAX) {
		fuse_reply_err(req, EFBIG);
		return;
	}
	struct node *n = node_get(&fs->nodes, ino, true);
	if (!n) {
		fuse_reply_err(req, ENOMEM);
		return;
	}
	struct handle *h = (struct handle *)(uintptr_t)fi->fh;
	uint32_t tid = (uint32_t)fuse_req_ctx(req)->pid;
	struct cap_proc *p = writer_of(fs, h, tid);
	pthread_mutex_lock(&n->lock);
	handle_wrote(fs, h, p, tid);
	if (!n->buf.n)
		n->buf.ctx = req_ctx(req);
	int rc = wbuf_add(&n->buf, (uint64_t)off, data, size);
	if (!rc) {
		n->buf.mtime = mfs_now();
		if (n->buf.bytes >= WRITE_BUFFER_MAX)
			rc = flush_locked(fs, n);
	}
	pthread_mutex_unlock(&n->lock);
	release_node(fs, n, 0, 0);
	if (rc)
		fuse_reply_err(req, -rc);
	else
		fuse_reply_write(req, size);
}

/* Every close() of a descriptor: a close after writing makes a version. */
/* Drops the locks of kind owner holds on n, when any lock of that kind
 * was taken on it through this mount. A close must not fail for it: an
 * error is logged, and the locks of a mount gone are ignored anyway. */
static void drop_locks(struct mfs_fs *fs, struct node *n, uint32_t kind, uint64_t owner)
{
	pthread_mutex_lock(&n->lock);
	bool any = kind == MFS_LOCK_POSIX ? n->posix_locks : n->flock_locks;
	pthread_mutex_unlock(&n->lock);
	if (!any)
		return;
	int rc = ns_lock_release(fs->vol, n->ino, kind, owner);
	if (!rc && fs->lockwait)
		lockwait_kick(fs->lockwait, n->ino);
	if (rc && rc != -ENOENT)
		log_error("inode %llu: cannot drop the %s locks of a closed file: %s", (unsigned long long)n->ino,
			  kind == MFS_LOCK_POSIX ? "fcntl" : "flock", strerror(-rc));
}

static void op_flush(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	struct mfs_fs *fs = FS(req);
	struct node *n = node_get(&fs->nodes, ino, false);
	int rc = 0;
	if (n) {
		pthread_mutex_lock(&n->lock);
		rc = flush_handle_locked(fs, n, (struct handle *)(uintptr_t)fi->fh, false);
		pthread_mutex_unlock(&n->lock);
		/* a close drops the process's fcntl locks on the file; the
		 * kernel leaves that to the daemon that keeps them */
		drop_locks(fs, n, MFS_LOCK_POSIX, fi->lock_owner);
		release_node(fs, n, 0, 0);
	}
	fuse_reply_err(req, -rc);
}

static void op_release(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	struct mfs_fs *fs = FS(req);
	struct handle *h = (struct handle *)(uintptr_t)fi->fh;
	struct node *n = node_get(&fs->nodes, ino, false);
	if (n) {
		pthread_mutex_lock(&n->lock);
		flush_handle_locked(fs, n, h, true);
		park_creator_locked(fs, n, h);
		handle_detach_locked(n, h);
		pthread_mutex_unlock(&n->lock);
		if (fi->flock_release)
			drop_locks(fs, n, MFS_LOCK_FLOCK, fi->lock_owner);
		hold_close(fs, n);
		release_node(fs, n, 0, 1);
	}
	handle_free(fs, h);
	fuse_reply_err(req, 0);
}

/* ---------------------------------------------------------------- locks */

/* Locks on a shared volume live in the store (locks.h), where every mount
 * sees them; on a volume only this daemon serves, the kernel keeps them
 * (op_init does not ask for these operations). */

static int lock_range(const struct flock *l, uint64_t *start, uint64_t *end)
{
	if (l->l_start < 0 || l->l_len < 0)
		return -EINVAL;
	*start = (uint64_t)l->l_start;
	*end = l->l_len == 0 ? MFS_LOCK_EOF : (uint64_t)l->l_start + (uint64_t)l->l_len - 1;
	return 0;
}

static void op_getlk(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi, struct flock *lock)
{
	struct mfs_fs *fs = FS(req);
	uint64_t start, end;
	struct mfs_lock c;
	int rc = lock_range(lock, &start, &end);
	if (!rc)
		rc = ns_lock_test(fs->vol, ino, MFS_LOCK_POSIX, fi->lock_owner, (uint32_t)lock->l_type, start, end,
				  &c);
	if (rc) {
		fuse_reply_err(req, -rc);
		return;
	}
	if (c.type == F_UNLCK) {
		lock->l_type = F_UNLCK;
	} else {
		lock->l_type = (short)c.type;
		lock->l_whence = SEEK_SET;
		lock->l_start = (off_t)c.start;
		lock->l_len = c.end == MFS_LOCK_EOF ? 0 : (off_t)(c.end - c.start + 1);
		/* a process of another mount, maybe on another host, has no
		 * pid here */
		lock->l_pid = c.mine ? (pid_t)c.pid : 0;
	}
	fuse_reply_lock(req, lock);
}

/* Notes on the node that locks of kind were taken on it through this mount,
 * so that closes drop them. */
static void mark_locked(struct mfs_fs *fs, uint64_t ino, uint32_t kind)
{
	struct node *n = node_get(&fs->nodes, ino, true);
	if (!n)
		return;
	pthread_mutex_lock(&n->lock);
	if (kind == MFS_LOCK_POSIX)
		n->posix_locks = true;
	else
		n->flock_locks = true;
	pthread_mutex_unlock(&n->lock);
	release_node(fs, n, 0, 0);
}

static void lock_granted(void *arg, uint64_t ino, uint32_t kind)
{
	mark_locked(arg, ino, kind);
}

/* Takes, changes or lets go a lock and answers req. A lock another owner
 * holds is refused at once (EAGAIN) unless the caller waits (wait): then
 * the request is queued (lockwait.h) and answered when the lock is taken
 * or the caller is interrupted, without keeping this worker thread. */
static void take_lock(fuse_req_t req, fuse_ino_t ino, uint32_t kind, uint64_t owner, uint32_t type, uint64_t start,
		      uint64_t end, bool wait)
{
	struct mfs_fs *fs = FS(req);
	uint32_t pid = fuse_req_ctx(req)->pid;
	int rc = ns_lock_set(fs->vol, ino, kind, owner, pid, type, start, end);
	if (rc == -EAGAIN && wait && fs->lockwait &&
	    lockwait_add(fs->lockwait, req, ino, kind, owner, pid, type, start, end) == 0)
		return;
	if (!rc && type != F_UNLCK)
		mark_locked(fs, ino, kind);
	/* an unlock, or a lock made smaller or shared: waiters ask again */
	if (!rc && fs->lockwait)
		lockwait_kick(fs->lockwait, ino);
	fuse_reply_err(req, -rc);
}

static void op_setlk(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi, struct flock *lock, int sleep)
{
	uint64_t start, end;
	int rc = lock_range(lock, &start, &end);
	if (rc)
		fuse_reply_err(req, -rc);
	else
		take_lock(req, ino, MFS_LOCK_POSIX, fi->lock_owner, (uint32_t)lock->l_type, start, end, sleep);
}

static void op_flock(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi, int op)
{
	uint32_t type = (op & LOCK_SH) ? F_RDLCK : (op & LOCK_EX) ? F_WRLCK : F_UNLCK;
	take_lock(req, ino, MFS_LOCK_FLOCK, fi->lock_owner, type, 0, MFS_LOCK_EOF, !(op & LOCK_NB));
}

static void op_fsync(fuse_req_t req, fuse_ino_t ino, int datasync, struct fuse_file_info *fi)
{
	int rc = flush_ino(FS(req), ino);
	if (!rc)
		rc = ns_sync(FS(req)->vol);
	fuse_reply_err(req, -rc);
}

static void op_fallocate(fuse_req_t req, fuse_ino_t ino, int mode, off_t offset, off_t length,
			 struct fuse_file_info *fi)
{
	if (offset < 0 || length <= 0) {
		fuse_reply_err(req, EINVAL);
		return;
	}
	/* buffered bytes first, so that a punched hole is not refilled by them */
	int rc = flush_ino(FS(req), ino);
	struct mfs_ctx c = req_ctx(req);
	if (!rc)
		rc = ns_fallocate(FS(req)->vol, &c, ino, mode, (uint64_t)offset, (uint64_t)length);
	if (!rc)
		content_changed(FS(req), ino);
	fuse_reply_err(req, -rc);
}

static void op_fsyncdir(fuse_req_t req, fuse_ino_t ino, int datasync, struct fuse_file_info *fi)
{
	fuse_reply_err(req, -ns_sync(FS(req)->vol));
}

/* ---------------------------------------------------------------- directories */

struct dirbuf {
	fuse_req_t req;
	struct mfs_fs *fs;
	char *buf;
	size_t size, used;
	bool plus;
};

static int fill_dir(void *arg, const char *name, size_t len, const struct inode_rec *attr,
		    uint32_t type, uint64_t ino, uint64_t next)
{
	struct dirbuf *d = arg;
	char nm[MFS_NAME_MAX + 1];
	memcpy(nm, name, len);
	nm[len] = '\0';
	size_t need;
	if (!d->plus) {
		struct stat st = { .st_ino = ino, .st_mode = type };
		need = fuse_add_direntry(d->req, d->buf + d->used, d->size - d->used, nm, &st, (off_t)next);
		if (need > d->size - d->used)
			return 1;
		d->used += need;
		return 0;
	}
	struct fuse_entry_param e = { .attr_timeout = d->fs->attr_timeout, .entry_timeout = d->fs->entry_timeout };
	bool dots = !strcmp(nm, ".") || !strcmp(nm, "..");
	if (dots) {
		/* no lookup reference for the dot entries: ino 0 tells the
		 * kernel to take none */
		e.attr.st_ino = ino;
		e.attr.st_mode = type;
	} else {
		e.ino = ino;
		e.generation = 1;
		struct inode_rec a = *attr;
		overlay_attr(d->fs, &a);
		to_stat(&a, &e.attr);
	}
	need = fuse_add_direntry_plus(d->req, d->buf + d->used, d->size - d->used, nm, &e, (off_t)next);
	if (need > d->size - d->used)
		return 1;
	d->used += need;
	if (!dots) {
		struct node *n = node_get(&d->fs->nodes, ino, true);
		if (!n)
			return -ENOMEM;
		node_add_lookup(&d->fs->nodes, n);
		node_put(&d->fs->nodes, n, 0, 0);
	}
	return 0;
}

static void do_readdir(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off, bool plus)
{
	struct dirbuf d = { req, FS(req), malloc(size), size, 0, plus };
	if (!d.buf) {
		fuse_reply_err(req, ENOMEM);
		return;
	}
	int rc = ns_readdir(d.fs->vol, ino, (uint64_t)off, plus, fill_dir, &d);
	if (rc < 0 && d.used == 0)
		fuse_reply_err(req, -rc);
	else
		fuse_reply_buf(req, d.buf, d.used);
	free(d.buf);
}

static void op_readdir(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off, struct fuse_file_info *fi)
{
	do_readdir(req, ino, size, off, false);
}

static void op_readdirplus(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off, struct fuse_file_info *fi)
{
	do_readdir(req, ino, size, off, true);
}

static void op_statfs(fuse_req_t req, fuse_ino_t ino)
{
	struct statvfs st;
	int rc = ns_statfs(FS(req)->vol, &st);
	if (rc)
		fuse_reply_err(req, -rc);
	else
		fuse_reply_statfs(req, &st);
}

/* ---------------------------------------------------------------- xattrs */

static void op_setxattr(fuse_req_t req, fuse_ino_t ino, const char *name, const char *value,
			size_t size, int flags)
{
	struct mfs_ctx c = req_ctx(req);
	int rc = ns_setxattr(FS(req)->vol, &c, ino, name, value, size, flags);
	if (!rc && FS(req)->cap && !strcmp(name, CAPTURE_XATTR))
		capture_invalidate(FS(req)->cap);
	fuse_reply_err(req, -rc);
}

static void op_getxattr(fuse_req_t req, fuse_ino_t ino, const char *name, size_t size)
{
	char *buf = size ? malloc(size) : NULL;
	if (size && !buf) {
		fuse_reply_err(req, ENOMEM);
		return;
	}
	int rc = ns_getxattr(FS(req)->vol, ino, name, buf, size);
	if (rc < 0)
		fuse_reply_err(req, -rc);
	else if (size == 0)
		fuse_reply_xattr(req, (size_t)rc);
	else
		fuse_reply_buf(req, buf, (size_t)rc);
	free(buf);
}

static void op_listxattr(fuse_req_t req, fuse_ino_t ino, size_t size)
{
	char *buf = size ? malloc(size) : NULL;
	if (size && !buf) {
		fuse_reply_err(req, ENOMEM);
		return;
	}
	int rc = ns_listxattr(FS(req)->vol, ino, buf, size);
	if (rc < 0)
		fuse_reply_err(req, -rc);
	else if (size == 0)
		fuse_reply_xattr(req, (size_t)rc);
	else
		fuse_reply_buf(req, buf, (size_t)rc);
	free(buf);
}

static void op_removexattr(fuse_req_t req, fuse_ino_t ino, const char *name)
{
	struct mfs_ctx c = req_ctx(req);
	int rc = ns_removexattr(FS(req)->vol, &c, ino, name);
	if (!rc && FS(req)->cap && !strcmp(name, CAPTURE_XATTR))
		capture_invalidate(FS(req)->cap);
	fuse_reply_err(req, -rc);
}

static const struct fuse_lowlevel_ops mfs_ops = {
	.init = op_init,
	.destroy = op_destroy,
	.lookup = op_lookup,
	.forget = op_forget,
	.forget_multi = op_forget_multi,
	.getattr = op_getattr,
	.setattr = op_setattr,
	.readlink = op_readlink,
	.mknod = op_mknod,
	.mkdir = op_mkdir,
	.symlink = op_symlink,
	.link = op_link,
	.unlink = op_unlink,
	.rmdir = op_rmdir,
	.rename = op_rename,
	.open = op_open,
	.create = op_create,
	.read = op_read,
	.write = op_write,
	.flush = op_flush,
	.release = op_release,
	.fsync = op_fsync,
	.getlk = op_getlk,
	.setlk = op_setlk,
	.flock = op_flock,
	.fallocate = op_fallocate,
	.readdir = op_readdir,
	.readdirplus = op_readdirplus,
	.fsyncdir = op_fsyncdir,
	.statfs = op_statfs,
	.setxattr = op_setxattr,
	.getxattr = op_getxattr,
	.listxattr = op_listxattr,
	.removexattr = op_removexattr,
};

/* ---------------------------------------------------------------- session */

bool mfs_fs_shared(const struct mfs_volume *v)
{
	return strcmp(v->store->ops->name, "rocksdb") != 0;
}

int mfs_fs_create(struct mfs_volume *v, struct fuse_args *args, const struct mfs_fs_opts *o,
		  struct mfs_fs **out)
{
	struct mfs_fs *fs = calloc(1, sizeof *fs);
	if (!fs)
		return -ENOMEM;
	fs->vol = v;
	fs->shared = mfs_fs_shared(v);
	for (int i = 0; i < HOLD_LOCKS; i++)
		pthread_mutex_init(&fs->hold_lock[i], NULL);
	fs->strict = o->strict;
	fs->inval_poll_ms = o->inval_poll_ms ? o->inval_poll_ms : 100;
	/* a name found absent on a shared volume is not cached by default:
	 * another mount may make it any time, and a create that found it
	 * absent here would meet it */
	double dflt = 1.0;
	fs->entry_timeout = o->strict ? 0 : o->entry_timeout >= 0 ? o->entry_timeout : dflt;
	fs->attr_timeout = o->strict ? 0 : o->attr_timeout >= 0 ? o->attr_timeout : dflt;
	fs->negative_timeout = o->strict ? 0 : o->negative_timeout >= 0 ? o->negative_timeout
						 : fs->shared ? 0 : dflt;
	if (o->lineage && capture_create(v, &fs->cap)) {
		free(fs);
		return -ENOMEM;
	}
	if (nodes_init(&fs->nodes)) {
		capture_destroy(fs->cap);
		free(fs);
		return -ENOMEM;
	}
	fs->nodes.drop = node_dropped;
	fs->nodes.drop_arg = fs;
	/* The volume names the mount (fsname) so tools can find it from any
	 * path inside. default_permissions is always on: the kernel checks
	 * permission bits, and the namespace layer trusts those checks. */
	char opt[4200];
	char *esc = malloc(strlen(v->store->spec) * 2 + 1);
	if (!esc) {
		nodes_fini(&fs->nodes);
		capture_destroy(fs->cap);
		free(fs);
		return -ENOMEM;
	}
	char *q = esc;
	for (const char *p = v->store->spec; *p; p++) {
		if (*p == ',' || *p == '\\')
			*q++ = '\\';
		*q++ = *p;
	}
	*q = '\0';
	snprintf(opt, sizeof opt, "-ofsname=%s,subtype=metafs,default_permissions", esc);
	free(esc);
	if (fuse_opt_add_arg(args, opt) != 0) {
		nodes_fini(&fs->nodes);
		capture_destroy(fs->cap);
		free(fs);
		return -ENOMEM;
	}
	fs->se = fuse_session_new(args, &mfs_ops, sizeof mfs_ops, fs);
	if (!fs->se) {
		nodes_fini(&fs->nodes);
		capture_destroy(fs->cap);
		free(fs);
		return -EINVAL;
	}
	*out = fs;
	return 0;
}

int mfs_fs_mount(struct mfs_fs *fs, const char *mountpoint)
{
	if (fuse_session_mount(fs->se, mountpoint) != 0)
		return -EIO;
	fs->mounted = true;
	return 0;
}

int mfs_fs_run(struct mfs_fs *fs)
{
	if (fuse_set_signal_handlers(fs->se) != 0)
		return -EIO;
	struct fuse_loop_config *cfg = fuse_loop_cfg_create();
	if (!cfg)
		return -ENOMEM;
	/* two cores: a handful of threads keeps both busy while some wait
	 * on the disk or the database (a waiting lock keeps none: lockwait.h) */
	fuse_loop_cfg_set_max_threads(cfg, 16);
	fuse_loop_cfg_set_idle_threads(cfg, 4);
	if (ns_locks_shared(fs->vol)) {
		int rc = lockwait_start(fs->vol, lock_granted, fs, &fs->lockwait);
		if (rc) {
			fuse_loop_cfg_destroy(cfg);
			fuse_remove_signal_handlers(fs->se);
			log_error("cannot start the thread for waiting locks: %s", strerror(-rc));
			return rc;
		}
	}
	if (fs->shared) {
		struct inval_target t = { .vol = fs->vol, .se = fs->se, .nodes = &fs->nodes, .cap = fs->cap,
					  .poll_ms = fs->inval_poll_ms };
		int rc = inval_start(&t, &fs->inval);
		if (rc)
			log_error("cannot follow the changelog (%s): changes other mounts make show only "
				  "after the entry and attribute timeouts", strerror(-rc));
	}
	int rc = fuse_session_loop_mt(fs->se, cfg);
	lockwait_stop(fs->lockwait);
	fs->lockwait = NULL;
	if (fs->inval) {
		uint64_t records, notices;
		inval_counts(fs->inval, &records, &notices);
		inval_stop(fs->inval);
		fs->inval = NULL;
		log_info("followed %llu changelog records, %llu cache invalidations",
			 (unsigned long long)records, (unsigned long long)notices);
	}
	fuse_loop_cfg_destroy(cfg);
	fuse_remove_signal_handlers(fs->se);
	return rc < 0 ? rc : 0;
}

void mfs_fs_destroy(struct mfs_fs *fs)
{
	if (!fs)
		return;
	if (fs->mounted)
		fuse_session_unmount(fs->se);
	fuse_session_destroy(fs->se);
	nodes_fini(&fs->nodes);
	capture_destroy(fs->cap);
	for (int i = 0; i < HOLD_LOCKS; i++)
		pthread_mutex_destroy(&fs->hold_lock[i]);
	free(fs);
}
