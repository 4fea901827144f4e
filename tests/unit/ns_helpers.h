/* SPDX-License-Identifier: Apache-2.0 */
/* Namespace helpers shared by the unit tests that build trees. */
#ifndef METAFS_TEST_NS_HELPERS_H
#define METAFS_TEST_NS_HELPERS_H

#include <sys/stat.h>

#include "metadata.h"

static struct mfs_ctx C = { 1000, 1000, 4242 };
#define ROOT MFS_ROOT_INO

/* The new file's inode number, 0 on failure. */
static inline uint64_t mkfile(struct mfs_volume *v, uint64_t parent, const char *name)
{
	struct inode_rec in;
	int rc = ns_mknod(v, &C, parent, name, S_IFREG | 0644, 0, &in);
	return rc ? 0 : in.ino;
}

static inline uint64_t mkdir_(struct mfs_volume *v, uint64_t parent, const char *name)
{
	struct inode_rec in;
	int rc = ns_mkdir(v, &C, parent, name, 0755, &in);
	return rc ? 0 : in.ino;
}

#endif
