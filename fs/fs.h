/* SPDX-License-Identifier: Apache-2.0 */
/* fs: the FUSE low-level daemon that serves a volume at a mountpoint. */
#ifndef METAFS_FS_H
#define METAFS_FS_H

#define FUSE_USE_VERSION 312
#include <fuse_lowlevel.h>

#include <stdbool.h>

#include "metadata.h"

struct mfs_fs;

/* args: FUSE options (-o ...); metafs adds fsname, subtype and
 * default_permissions. lineage: capture provenance (see capture.h). */
int mfs_fs_create(struct mfs_volume *v, struct fuse_args *args, bool lineage, struct mfs_fs **out);
int mfs_fs_mount(struct mfs_fs *fs, const char *mountpoint);
/* Serves requests until unmounted or signalled (SIGTERM, SIGINT, SIGHUP). */
int mfs_fs_run(struct mfs_fs *fs);
/* Flushes, unmounts and frees; the volume stays open. */
void mfs_fs_destroy(struct mfs_fs *fs);

#endif
