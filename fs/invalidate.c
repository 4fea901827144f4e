/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Following the changelog of a shared volume, to invalidate the kernel's
 * caches (see invalidate.h).
 *
 * Ids are handed out when a transaction writes its record and become visible
 * when it commits, so a lower id can show up after a higher one, or never
 * (a transaction that rolled back). Each pass reads what follows the highest
 * id handled; the ids skipped on the way are remembered as holes, and while
 * there are any the changelog is read again from the first hole about once a
 * second, until each hole is filled or has waited the settle time
 * (cl_settle_ns, as for the indexer). Ids handled beyond the
 * first hole are remembered so that nothing is notified twice.
 *
 * The thread holds no lock of the daemon's while it notifies: the kernel may
 * make a notification wait for an operation on the same directory, and that
 * operation must be able to finish.
 */
#include "invalidate.h"
#include "capture.h"
#include "common.h"

#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#define PASS_MAX 4096 /* records handled per pass before the next wait */
#define REREAD_NS 1000000000LL /* how often holes are looked for again */
#define ERROR_LOG_NS (60 * 1000000000LL)

struct inval {
	struct inval_target t;
	pthread_t thread;
	pthread_mutex_t mu;
	pthread_cond_t cv;
	bool stop;
	uint64_t cursor; /* every id up to here handled or given up */
	uint64_t high; /* the highest id handled */
	struct cl_holes holes;
	uint64_t *seen; /* ids above the cursor handled, sorted */
	size_t nseen, capseen;
	int64_t settle_ns, last_reread, last_error;
	size_t pass; /* records handled in this pass */
	_Atomic uint64_t records, notices;
};

/* ---------------------------------------------------------------- ids */

static size_t seen_pos(const struct inval *iv, uint64_t seq)
{
	size_t lo = 0, hi = iv->nseen;
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		if (iv->seen[mid] < seq)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo;
}

static bool seen_has(const struct inval *iv, uint64_t seq)
{
	size_t i = seen_pos(iv, seq);
	return i < iv->nseen && iv->seen[i] == seq;
}

static int seen_add(struct inval *iv, uint64_t seq)
{
	if (mfs_array_reserve(&iv->seen, &iv->capseen, iv->nseen, sizeof *iv->seen))
		return -ENOMEM;
	size_t i = seen_pos(iv, seq);
	if (i < iv->nseen)
		memmove(iv->seen + i + 1, iv->seen + i, (iv->nseen - i) * sizeof *iv->seen);
	iv->seen[i] = seq;
	iv->nseen++;
	return 0;
}

/* Moves the cursor up to the first hole still waited for. */
static void advance(struct inval *iv)
{
	int64_t now = cl_mono_ns();
	uint64_t first = iv->high + 1;
	for (size_t i = 0; i < iv->holes.n;) {
		if (now - iv->holes.v[i].since_ns >= iv->settle_ns) {
			iv->holes.v[i] = iv->holes.v[--iv->holes.n];
			continue;
		}
		if (iv->holes.v[i].lo < first)
			first = iv->holes.v[i].lo;
		i++;
	}
	iv->cursor = first - 1;
	size_t drop = seen_pos(iv, iv->cursor + 1);
	if (drop) {
		memmove(iv->seen, iv->seen + drop, (iv->nseen - drop) * sizeof *iv->seen);
		iv->nseen -= drop;
	}
}

/* ---------------------------------------------------------------- notices */

static void notice(struct inval *iv, int rc, const char *what, uint64_t ino)
{
	/* -ENOENT: the kernel had nothing cached */
	if (rc == 0)
		iv->notices++;
	else if (rc != -ENOENT && rc != -ENODEV && rc != -EBADF)
		log_warn("cannot tell the kernel that %s of inode %llu changed: %s", what,
			 (unsigned long long)ino, strerror(-rc));
}

/* the inode's attributes (and with data, its cached pages) */
static void drop_inode(struct inval *iv, uint64_t ino, bool data)
{
	if (!ino || (ino != MFS_ROOT_INO && !node_known(iv->t.nodes, ino)))
		return;
	notice(iv, fuse_lowlevel_notify_inval_inode(iv->t.se, ino, data ? 0 : -1, 0),
	       data ? "the content" : "the attributes", ino);
}

/* the name parent/name, positive or negative */
static void drop_entry(struct inval *iv, uint64_t parent, const char *name, size_t len)
{
	if (!len || (parent != MFS_ROOT_INO && !node_known(iv->t.nodes, parent)))
		return;
	notice(iv, fuse_lowlevel_notify_inval_entry(iv->t.se, parent, name, len), "a name", parent);
}

/* The content changed: the provenance version the node knew is stale. */
static void content_changed(struct inval *iv, uint64_t ino)
{
	if (!iv->t.cap)
		return;
	struct node *n = node_get(iv->t.nodes, ino, false);
	if (!n)
		return;
	pthread_mutex_lock(&n->lock);
	n->content_gen++;
	n->pversion = 0;
	pthread_mutex_unlock(&n->lock);
	if (node_put(iv->t.nodes, n, 0, 0)) {
		int rc = ns_reclaim(iv->t.vol, ino);
		if (rc < 0)
			log_error("inode %llu: cannot free after its last use: %s", (unsigned long long)ino,
				  strerror(-rc));
	}
}

/* A name moved elsewhere: the node remembers where it is now, for the
 * names provenance records give. */
static void renamed(struct inval *iv, const struct cl_rec *r)
{
	if (!iv->t.cap)
		return;
	if (S_ISDIR(r->mode))
		capture_invalidate(iv->t.cap); /* a subtree moved in or out of capture */
	struct node *n = node_get(iv->t.nodes, r->ino, false);
	if (!n)
		return;
	char *copy = strndup(r->new_name, r->new_name_len);
	pthread_mutex_lock(&n->lock);
	if (copy && n->name && n->parent == r->parent && strlen(n->name) == r->name_len &&
	    !memcmp(n->name, r->name, r->name_len)) {
		free(n->name);
		n->name = copy;
		n->parent = r->new_parent;
		copy = NULL;
	}
	pthread_mutex_unlock(&n->lock);
	free(copy);
	if (node_put(iv->t.nodes, n, 0, 0)) {
		int rc = ns_reclaim(iv->t.vol, r->ino);
		if (rc < 0)
			log_error("inode %llu: cannot free after its last use: %s", (unsigned long long)r->ino,
				  strerror(-rc));
	}
}

static void handle(struct inval *iv, const struct cl_rec *r)
{
	switch (r->op) {
	case CL_CREATE:
	case CL_MKDIR:
	case CL_MKNOD:
	case CL_SYMLINK:
	case CL_LINK:
		drop_entry(iv, r->parent, r->name, r->name_len);
		drop_inode(iv, r->parent, false);
		if (r->op == CL_LINK)
			drop_inode(iv, r->ino, false);
		break;
	case CL_UNLINK:
	case CL_RMDIR:
		drop_entry(iv, r->parent, r->name, r->name_len);
		drop_inode(iv, r->parent, false);
		drop_inode(iv, r->ino, false);
		break;
	case CL_RENAME:
		drop_entry(iv, r->parent, r->name, r->name_len);
		drop_entry(iv, r->new_parent, r->new_name, r->new_name_len);
		drop_inode(iv, r->parent, false);
		if (r->new_parent != r->parent)
			drop_inode(iv, r->new_parent, false);
		drop_inode(iv, r->ino, false);
		drop_inode(iv, r->replaced, false);
		renamed(iv, r);
		break;
	case CL_SETATTR:
		if (r->fields & (MFS_SET_SIZE | MFS_SET_MTIME | MFS_SET_MTIME_NOW)) {
			drop_inode(iv, r->ino, true);
			content_changed(iv, r->ino);
		} else {
			drop_inode(iv, r->ino, false);
		}
		break;
	case CL_WRITE:
		drop_inode(iv, r->ino, true);
		content_changed(iv, r->ino);
		break;
	case CL_SETXATTR:
	case CL_REMOVEXATTR:
		drop_inode(iv, r->ino, false);
		if (iv->t.cap && r->xname_len == strlen(CAPTURE_XATTR) &&
		    !memcmp(r->xname, CAPTURE_XATTR, r->xname_len))
			capture_invalidate(iv->t.cap);
		break;
	case CL_GENERATED:
		content_changed(iv, r->ino);
		break;
	default:
		break;
	}
}

static int on_record(void *arg, const struct cl_rec *r)
{
	struct inval *iv = arg;
	if (r->seq <= iv->cursor || seen_has(iv, r->seq))
		return 0;
	/* without memory a hole is not waited for, or waited for whole */
	if (r->seq > iv->high + 1)
		(void)cl_holes_note(&iv->holes, iv->high + 1, r->seq - 1, cl_mono_ns());
	else if (r->seq <= iv->high)
		(void)cl_holes_fill(&iv->holes, r->seq);
	if (r->seq > iv->high)
		iv->high = r->seq;
	/* an id not remembered would be handled again: harmless, a second
	 * notification */
	(void)seen_add(iv, r->seq);
	/* this mount's own change: the kernel and the daemon know it already
	 * (dropping the kernel's entries for it would make the kernel forget
	 * what this mount just made, and lineage what it remembers of it) */
	if (!r->origin || r->origin != iv->t.vol->store->session)
		handle(iv, r);
	iv->records++;
	return ++iv->pass >= PASS_MAX ? 1 : 0;
}

/* One pass; returns true when there may be more to read at once. */
static bool step(struct inval *iv)
{
	struct store *s = iv->t.vol->store;
	int64_t now = cl_mono_ns();
	uint64_t from = iv->high + 1;
	if (iv->holes.n && now - iv->last_reread >= REREAD_NS) {
		from = iv->cursor + 1;
		iv->last_reread = now;
	}
	iv->pass = 0;
	int rc = s->ops->changelog_read(s, from, on_record, iv);
	if (rc < 0 && now - iv->last_error >= ERROR_LOG_NS) {
		iv->last_error = now;
		log_warn("cannot read the changelog to follow other mounts' changes (%s); trying again",
			 strerror(-rc));
	}
	advance(iv);
	return rc >= 0 && iv->pass >= PASS_MAX;
}

static void *run(void *arg)
{
	struct inval *iv = arg;
	pthread_mutex_lock(&iv->mu);
	while (!iv->stop) {
		pthread_mutex_unlock(&iv->mu);
		bool more = step(iv);
		pthread_mutex_lock(&iv->mu);
		if (more || iv->stop)
			continue;
		struct timespec until;
		clock_gettime(CLOCK_MONOTONIC, &until);
		until.tv_nsec += (long)(iv->t.poll_ms % 1000) * 1000000L;
		until.tv_sec += iv->t.poll_ms / 1000 + until.tv_nsec / 1000000000L;
		until.tv_nsec %= 1000000000L;
		pthread_cond_timedwait(&iv->cv, &iv->mu, &until);
	}
	pthread_mutex_unlock(&iv->mu);
	return NULL;
}

int inval_start(const struct inval_target *t, struct inval **out)
{
	struct inval *iv = calloc(1, sizeof *iv);
	if (!iv)
		return -ENOMEM;
	iv->t = *t;
	if (!iv->t.poll_ms)
		iv->t.poll_ms = 100;
	iv->settle_ns = cl_settle_ns();
	struct store *s = t->vol->store;
	uint64_t first = 0, last = 0;
	int rc = s->ops->changelog_bounds(s, &first, &last);
	if (rc < 0) {
		free(iv);
		return rc;
	}
	/* the kernel caches nothing yet: what is committed now is seen */
	iv->cursor = iv->high = last;
	mfs_cond_init_monotonic(&iv->cv);
	pthread_mutex_init(&iv->mu, NULL);
	rc = pthread_create(&iv->thread, NULL, run, iv);
	if (rc) {
		pthread_cond_destroy(&iv->cv);
		pthread_mutex_destroy(&iv->mu);
		free(iv);
		return -rc;
	}
	*out = iv;
	return 0;
}

void inval_stop(struct inval *iv)
{
	if (!iv)
		return;
	pthread_mutex_lock(&iv->mu);
	iv->stop = true;
	pthread_cond_signal(&iv->cv);
	pthread_mutex_unlock(&iv->mu);
	pthread_join(iv->thread, NULL);
	pthread_cond_destroy(&iv->cv);
	pthread_mutex_destroy(&iv->mu);
	free(iv->holes.v);
	free(iv->seen);
	free(iv);
}

void inval_counts(const struct inval *iv, uint64_t *records, uint64_t *notices)
{
	*records = iv ? iv->records : 0;
	*notices = iv ? iv->notices : 0;
}
