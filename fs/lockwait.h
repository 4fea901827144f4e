/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Shared volumes: lock requests that must wait (F_SETLKW, flock without
 * LOCK_NB) while another owner, maybe on another host, holds a conflicting
 * lock. A waiting request does not keep a FUSE worker thread: it is queued
 * here, and one thread asks the store again for each, less often the longer
 * it waits, until the lock is granted, the store fails, or the caller is
 * interrupted (a signal: EINTR). Any number of processes can so wait on one
 * mount while the mount goes on answering, the holder's unlock included.
 */
#ifndef METAFS_FS_LOCKWAIT_H
#define METAFS_FS_LOCKWAIT_H

#define FUSE_USE_VERSION 312
#include <fuse_lowlevel.h>
#include <stdint.h>

#include "metadata.h"

struct lockwait;

/* Called from the waiting thread when a queued lock was taken, before the
 * caller is answered. */
typedef void (*lockwait_granted_fn)(void *arg, uint64_t ino, uint32_t kind);

int lockwait_start(struct mfs_volume *vol, lockwait_granted_fn granted, void *arg, struct lockwait **out);
/* Answers every request still waiting with EINTR and stops the thread. */
void lockwait_stop(struct lockwait *lw);

/* Queues req, whose lock was just refused (-EAGAIN): it is answered later,
 * 0 once the lock is taken, else the error. -ENOMEM: not queued, the
 * caller answers. */
int lockwait_add(struct lockwait *lw, fuse_req_t req, uint64_t ino, uint32_t kind, uint64_t owner, uint32_t pid,
		 uint32_t type, uint64_t start, uint64_t end);
/* A lock of ino was let go through this mount: its waiters ask again now. */
void lockwait_kick(struct lockwait *lw, uint64_t ino);

#endif
