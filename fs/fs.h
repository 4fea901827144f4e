/* SPDX-License-Identifier: Apache-2.0 */
/* fs: the FUSE low-level daemon that serves a volume at a mountpoint. */
#ifndef METAFS_FS_H
#define METAFS_FS_H

#define FUSE_USE_VERSION 312
#include <fuse_lowlevel.h>

#include <stdbool.h>

#include "metadata.h"

struct mfs_fs;

struct mfs_fs_opts {
	bool lineage; /* capture provenance (see capture.h) */
	/* seconds the kernel may cache names, attributes, and names found
	 * absent; negative: the default (1 s; names found absent on a shared
	 * volume: 0) */
	double entry_timeout, attr_timeout, negative_timeout;
	bool strict; /* nothing cached: every change elsewhere shows at once */
	unsigned inval_poll_ms; /* shared volumes: changelog reads (0: 100 ms) */
};

/* Whether other mounts may change the volume (a cluster store). */
bool mfs_fs_shared(const struct mfs_volume *v);
/* args: FUSE options (-o ...); metafs adds fsname, subtype and
 * default_permissions. */
int mfs_fs_create(struct mfs_volume *v, struct fuse_args *args, const struct mfs_fs_opts *o,
		  struct mfs_fs **out);
int mfs_fs_mount(struct mfs_fs *fs, const char *mountpoint);
/* Serves requests until unmounted or signalled (SIGTERM, SIGINT, SIGHUP). */
int mfs_fs_run(struct mfs_fs *fs);
/* Flushes, unmounts and frees; the volume stays open. */
void mfs_fs_destroy(struct mfs_fs *fs);

#endif
