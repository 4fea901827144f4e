/* SPDX-License-Identifier: Apache-2.0 */
/*
 * File locks in the store (see locks.h). Each change runs in one
 * transaction that first locks the file's inode row, so that two mounts
 * changing locks on one file take turns; it reads every lock on the file,
 * decides, and writes back the owner's new set of ranges.
 */
#include "locks.h"
#include "common.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>

#define OPS(t) ((t)->store->ops)
#define MAX_RANGES 4096 /* one owner's ranges on one file */

bool ns_locks_shared(const struct mfs_volume *v)
{
	return v->store->ops->lock_list != NULL;
}

struct lock_list {
	struct mfs_lock *v;
	size_t n, cap;
};

static int collect(void *arg, const struct mfs_lock *l)
{
	struct lock_list *ls = arg;
	if (mfs_array_reserve(&ls->v, &ls->cap, ls->n, sizeof *ls->v))
		return -ENOMEM;
	ls->v[ls->n++] = *l;
	return 0;
}

static bool overlap(uint64_t a0, uint64_t a1, uint64_t b0, uint64_t b1)
{
	return a0 <= b1 && b0 <= a1;
}

static bool is_own(const struct mfs_lock *l, uint32_t kind, uint64_t owner)
{
	return l->kind == kind && l->mine && l->owner == owner;
}

/* Whether l keeps owner from taking type on [start, end]. */
static bool conflicts(const struct mfs_lock *l, uint32_t kind, uint64_t owner, uint32_t type, uint64_t start,
		      uint64_t end)
{
	if (l->kind != kind || !l->live || is_own(l, kind, owner))
		return false;
	if (type == F_RDLCK && l->type == F_RDLCK)
		return false;
	return overlap(l->start, l->end, start, end);
}

struct lock_req {
	uint64_t ino, owner, start, end;
	uint32_t kind, type, pid;
	struct mfs_lock *out; /* test: the conflict found */
	bool release; /* drop all the owner's locks */
};

/* Reads the file's locks with its inode row locked; drops those of mounts
 * that stopped answering. */
static int load(struct store_txn *t, const struct lock_req *r, struct lock_list *ls)
{
	struct inode_rec in;
	int rc = OPS(t)->inode_get(t, r->ino, &in, true);
	if (rc)
		return rc;
	rc = OPS(t)->lock_list(t, r->ino, collect, ls);
	if (rc < 0)
		return rc;
	size_t k = 0;
	for (size_t i = 0; i < ls->n; i++) {
		struct mfs_lock *l = &ls->v[i];
		if (!l->live) {
			rc = OPS(t)->lock_del(t, l->ino, l->session, l->kind, l->owner);
			if (rc < 0)
				return rc;
			continue;
		}
		ls->v[k++] = *l;
	}
	ls->n = k;
	return 0;
}

static int test_fn(struct store_txn *t, void *arg)
{
	struct lock_req *r = arg;
	struct lock_list ls = { 0 };
	int rc = load(t, r, &ls);
	r->out->type = F_UNLCK;
	for (size_t i = 0; !rc && i < ls.n; i++) {
		if (conflicts(&ls.v[i], r->kind, r->owner, r->type, r->start, r->end)) {
			*r->out = ls.v[i];
			break;
		}
	}
	free(ls.v);
	return rc;
}

static int cmp_start(const void *a, const void *b)
{
	const struct mfs_lock *x = a, *y = b;
	return x->start < y->start ? -1 : x->start > y->start;
}

/* The owner's ranges after the request: the old ones less [start, end],
 * plus [start, end] of the new type, with touching ranges of one type
 * merged. */
static int new_ranges(const struct lock_req *r, const struct lock_list *ls, struct lock_list *out)
{
	for (size_t i = 0; i < ls->n; i++) {
		const struct mfs_lock *l = &ls->v[i];
		if (!is_own(l, r->kind, r->owner))
			continue;
		if (r->release)
			continue;
		if (!overlap(l->start, l->end, r->start, r->end)) {
			if (collect(out, l))
				return -ENOMEM;
			continue;
		}
		struct mfs_lock part = *l;
		if (l->start < r->start) {
			part.start = l->start;
			part.end = r->start - 1;
			if (collect(out, &part))
				return -ENOMEM;
		}
		if (l->end > r->end) {
			part.start = r->end + 1;
			part.end = l->end;
			if (collect(out, &part))
				return -ENOMEM;
		}
	}
	if (!r->release && r->type != F_UNLCK) {
		struct mfs_lock n = { .ino = r->ino, .owner = r->owner, .kind = r->kind, .type = r->type,
				      .start = r->start, .end = r->end, .pid = r->pid, .mine = true, .live = true };
		if (collect(out, &n))
			return -ENOMEM;
	}
	if (out->n > 1)
		qsort(out->v, out->n, sizeof *out->v, cmp_start);
	size_t k = 0;
	for (size_t i = 0; i < out->n; i++) {
		struct mfs_lock *p = k ? &out->v[k - 1] : NULL;
		struct mfs_lock *l = &out->v[i];
		if (p && p->type == l->type && p->end != MFS_LOCK_EOF && p->end + 1 >= l->start) {
			if (l->end > p->end)
				p->end = l->end;
			if (l->pid == r->pid)
				p->pid = r->pid;
			continue;
		}
		out->v[k++] = *l;
	}
	out->n = k;
	return k > MAX_RANGES ? -ENOLCK : 0;
}

static int set_fn(struct store_txn *t, void *arg)
{
	struct lock_req *r = arg;
	struct lock_list ls = { 0 }, mine = { 0 };
	int rc = load(t, r, &ls);
	for (size_t i = 0; !rc && !r->release && r->type != F_UNLCK && i < ls.n; i++)
		if (conflicts(&ls.v[i], r->kind, r->owner, r->type, r->start, r->end))
			rc = -EAGAIN;
	bool had = false;
	for (size_t i = 0; i < ls.n; i++)
		had |= is_own(&ls.v[i], r->kind, r->owner);
	if (!rc && (had || (!r->release && r->type != F_UNLCK)))
		rc = new_ranges(r, &ls, &mine);
	if (!rc && had)
		rc = OPS(t)->lock_del(t, r->ino, 0, r->kind, r->owner);
	for (size_t i = 0; !rc && i < mine.n; i++)
		rc = OPS(t)->lock_put(t, &mine.v[i]);
	free(ls.v);
	free(mine.v);
	return rc;
}

static int check(const struct mfs_volume *v, uint32_t kind, uint32_t type, uint64_t start, uint64_t end)
{
	if (!ns_locks_shared(v))
		return -EOPNOTSUPP;
	if ((kind != MFS_LOCK_POSIX && kind != MFS_LOCK_FLOCK) || start > end)
		return -EINVAL;
	if (type != F_RDLCK && type != F_WRLCK && type != F_UNLCK)
		return -EINVAL;
	return 0;
}

int ns_lock_test(struct mfs_volume *v, uint64_t ino, uint32_t kind, uint64_t owner, uint32_t type,
		 uint64_t start, uint64_t end, struct mfs_lock *out)
{
	int rc = check(v, kind, type, start, end);
	if (rc)
		return rc;
	struct lock_req r = { .ino = ino, .owner = owner, .start = start, .end = end, .kind = kind,
			      .type = type, .out = out };
	/* a transaction that writes: locks of a mount gone are removed */
	return ns_txn_run(v, test_fn, &r);
}

int ns_lock_set(struct mfs_volume *v, uint64_t ino, uint32_t kind, uint64_t owner, uint32_t pid,
		uint32_t type, uint64_t start, uint64_t end)
{
	int rc = check(v, kind, type, start, end);
	if (rc)
		return rc;
	struct lock_req r = { .ino = ino, .owner = owner, .start = start, .end = end, .kind = kind,
			      .type = type, .pid = pid };
	return ns_txn_run(v, set_fn, &r);
}

int ns_lock_release(struct mfs_volume *v, uint64_t ino, uint32_t kind, uint64_t owner)
{
	int rc = check(v, kind, F_UNLCK, 0, MFS_LOCK_EOF);
	if (rc)
		return rc;
	struct lock_req r = { .ino = ino, .owner = owner, .start = 0, .end = MFS_LOCK_EOF, .kind = kind,
			      .type = F_UNLCK, .release = true };
	return ns_txn_run(v, set_fn, &r);
}
