/* SPDX-License-Identifier: Apache-2.0 */
/*
 * File locks (flock, fcntl) held in the store, so that every mount of a
 * shared volume sees the others' locks. A volume only one daemon serves
 * leaves locks to the kernel, which keeps them itself.
 *
 * A lock belongs to an owner: the kernel's lock owner id (a process's
 * POSIX locks on a file share one; each open file description has its own
 * for flock), and the mount (store session) that took it, since owner ids
 * of two hosts may be equal. POSIX locks and flock locks do not conflict
 * with each other, as on Linux. Locks of a mount that stopped answering
 * (its session silent for a minute, a crash) are ignored and removed.
 */
#ifndef METAFS_METADATA_LOCKS_H
#define METAFS_METADATA_LOCKS_H

#include "metadata.h"

struct mfs_lock {
	uint64_t ino;
	uint64_t owner; /* the kernel's lock owner id */
	uint64_t session; /* the store's id of the mount that took it */
	uint32_t kind; /* MFS_LOCK_POSIX or MFS_LOCK_FLOCK */
	uint32_t type; /* F_RDLCK or F_WRLCK (F_UNLCK: none) */
	uint64_t start, end; /* bytes, inclusive */
	uint32_t pid; /* the process that took it, on its host */
	bool mine; /* taken through this mount */
	bool live; /* its mount still answers */
};

#define MFS_LOCK_POSIX 1
#define MFS_LOCK_FLOCK 2
#define MFS_LOCK_EOF UINT64_MAX /* a range to the end of the file, and beyond */

/* Whether the volume's store keeps locks for all its mounts. */
bool ns_locks_shared(const struct mfs_volume *v);

/* F_GETLK: the first lock of another owner that conflicts with taking
 * type (F_RDLCK or F_WRLCK) on [start, end]; out->type is F_UNLCK when
 * there is none. */
int ns_lock_test(struct mfs_volume *v, uint64_t ino, uint32_t kind, uint64_t owner, uint32_t type,
		 uint64_t start, uint64_t end, struct mfs_lock *out);
/* F_SETLK / flock: takes, converts or (F_UNLCK) drops owner's lock on
 * [start, end], splitting and merging the owner's ranges as POSIX says.
 * -EAGAIN when another owner's lock conflicts (nothing changed). */
int ns_lock_set(struct mfs_volume *v, uint64_t ino, uint32_t kind, uint64_t owner, uint32_t pid,
		uint32_t type, uint64_t start, uint64_t end);
/* Drops every lock of owner of that kind on ino (a close, a release). */
int ns_lock_release(struct mfs_volume *v, uint64_t ino, uint32_t kind, uint64_t owner);

#endif
