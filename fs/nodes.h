/* SPDX-License-Identifier: Apache-2.0 */
/* The daemon's in-memory state per inode the kernel knows: lookup and open
 * counts, and the buffer of writes not yet committed. */
#ifndef METAFS_FS_NODES_H
#define METAFS_FS_NODES_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <time.h>

#include "metadata.h"

struct extent {
	uint64_t off;
	size_t len, cap;
	char *data;
};

/* Writes waiting for a commit, kept sorted and non-overlapping. */
struct wbuf {
	struct extent *v;
	size_t n, cap;
	size_t bytes;
	uint64_t end; /* highest byte written + 1 */
	struct timespec mtime; /* when the last write was made */
	struct mfs_ctx ctx; /* who wrote, for the changelog */
};

struct handle; /* an open file of the daemon's (daemon.c) */
struct cap_proc; /* a process, for lineage (capture.h) */

struct node {
	uint64_t ino;
	uint64_t nlookup; /* kernel references, released by forget */
	uint32_t nopen; /* open handles */
	uint32_t refs; /* operations in flight holding the node */
	bool unlinked; /* the last name is gone: reclaim when unused */
	/* provenance: the directory and name it was last looked up by
	 * (name NULL when not known), and whether its name (or a directory
	 * above it) is noise never recorded; guarded by lock */
	uint64_t parent;
	char *name;
	bool noise;
	/* the number of the provenance version its content is (0: not
	 * known), valid while content_gen, bumped by every change of the
	 * content through this daemon, stays as it was; guarded by lock */
	uint64_t pversion, content_gen;
	/* the number of the file's newest provenance version (0: none), when
	 * vlast_known: learnt from a version made or used through this
	 * daemon, or from the file's creation; guarded by lock */
	uint64_t vlast;
	bool vlast_known;
	/* the open files lineage is recorded for, whose writes (or
	 * truncation) may wait for their version; guarded by lock */
	struct handle *handles;
	/* the process that created the file and closed it unwritten, while
	 * the content is still that (content_gen was creator_gen): its empty
	 * version is made only if the content is read (referenced; guarded
	 * by lock) */
	struct cap_proc *creator;
	uint64_t creator_gen;
	/* shared volumes: the inode version the kernel's pages of the file
	 * were read at, as the last open here saw it; guarded by lock */
	uint64_t page_version;
	/* shared volumes: the handles open here, counted under the daemon's
	 * hold lock of the inode, which registers the first open in the
	 * store and the last close (ns_hold, ns_unhold) */
	uint32_t hopen;
	/* shared volumes: a lock was taken on the file through this mount,
	 * so a close must drop the closer's; guarded by lock */
	bool posix_locks, flock_locks;
	pthread_mutex_t lock; /* guards buf and its commits */
	struct wbuf buf;
	struct node *next;
};

struct node_table {
	pthread_mutex_t lock;
	struct node **slots;
	size_t nslots, count;
	/* called for each node freed, to drop what its owner keeps there */
	void (*drop)(struct node *n, void *arg);
	void *drop_arg;
};

int nodes_init(struct node_table *t);
void nodes_fini(struct node_table *t);
/* Finds (or with create, makes) the node and takes a reference on it. */
struct node *node_get(struct node_table *t, uint64_t ino, bool create);
/* Drops a reference plus nlookup/nopen counts; returns true when the node
 * was freed and it was unlinked, so the caller reclaims the inode. */
bool node_put(struct node_table *t, struct node *n, uint64_t forget, uint32_t close);
void node_add_lookup(struct node_table *t, struct node *n);
void node_add_open(struct node_table *t, struct node *n);
/* Whether the kernel holds a reference to the inode (a lookup not forgotten). */
bool node_known(struct node_table *t, uint64_t ino);
void node_mark_unlinked(struct node_table *t, uint64_t ino, bool *known);
/* Calls fn on every node (used at unmount); fn may not free nodes. */
void nodes_each(struct node_table *t, void (*fn)(struct node *n, void *arg), void *arg);

int wbuf_add(struct wbuf *b, uint64_t off, const char *data, size_t len);
/* Copies buffered bytes over buf, which holds [off, off+len). */
void wbuf_overlay(const struct wbuf *b, uint64_t off, char *buf, size_t len);
void wbuf_clear(struct wbuf *b);

#endif
