/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Shared volumes: a thread that follows the volume's changelog and tells the
 * kernel to drop what it caches about names and inodes another mount
 * changed (libfuse's notify_inval_entry / notify_inval_inode), so that
 * changes made elsewhere show well before the entry and attribute timeouts.
 */
#ifndef METAFS_FS_INVALIDATE_H
#define METAFS_FS_INVALIDATE_H

#define FUSE_USE_VERSION 312
#include <fuse_lowlevel.h>

#include "metadata.h"
#include "nodes.h"

struct capture;
struct inval;

struct inval_target {
	struct mfs_volume *vol;
	struct fuse_session *se;
	struct node_table *nodes;
	struct capture *cap; /* NULL: lineage is not captured */
	unsigned poll_ms; /* how often the changelog is read */
};

/* Starts following from the changelog's current end. */
int inval_start(const struct inval_target *t, struct inval **out);
void inval_stop(struct inval *iv);
/* Counts for the log at unmount: records followed, kernel notifications. */
void inval_counts(const struct inval *iv, uint64_t *records, uint64_t *notices);

#endif
