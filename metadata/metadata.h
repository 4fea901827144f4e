/* SPDX-License-Identifier: Apache-2.0 */
/*
 * metadata: the volume, the store interface every backend implements, the
 * changelog records, and the namespace layer that writes the POSIX rules once
 * over that interface.
 *
 * Error convention: functions return 0 (or a non-negative count) on success
 * and a negative errno on failure.
 */
#ifndef METAFS_METADATA_H
#define METAFS_METADATA_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/statvfs.h>
#include <sys/types.h>
#include <time.h>

#define MFS_ROOT_INO 1
#define MFS_NAME_MAX 255
#define MFS_XATTR_NAME_MAX 255
#define MFS_XATTR_VALUE_MAX 65536
#define MFS_SYMLINK_MAX 4095
#define MFS_FORMAT_VERSION 1
#define MFS_DEFAULT_INLINE_THRESHOLD (64u * 1024)
#define MFS_DEFAULT_CHUNK_SIZE (256u * 1024)
#define MFS_MAX_CHUNK_SIZE (16u * 1024 * 1024)

/* A transaction that lost a lock race or a deadlock: the caller retries it whole. */
#define MFS_ERETRY (-EDEADLK)

/* ---------------------------------------------------------------- records */

#define INODE_F_CHUNKED 0x1 /* data lives in chunks, not inline */

struct inode_rec {
	uint64_t ino;
	uint32_t mode; /* type and permission bits, as st_mode */
	uint32_t nlink;
	uint32_t uid, gid;
	uint64_t rdev;
	uint64_t size;
	struct timespec atime, mtime, ctime, btime;
	uint64_t version; /* grows on every change of this inode */
	uint64_t parent; /* directories only: the directory holding it */
	/* directories: next readdir cookie to hand out; files on a volume
	 * several mounts share: the count of changes of which mounts have the
	 * file open (see ns_hold) */
	uint64_t next_cookie;
	uint32_t flags; /* INODE_F_* */
};

struct dirent_rec {
	uint64_t ino;
	uint32_t type; /* S_IFMT bits of the target */
	uint64_t cookie; /* stable position in readdir order */
};

struct superblock {
	uint32_t format_version;
	unsigned char uuid[16];
	uint32_t inline_threshold;
	uint32_t chunk_size;
	int64_t created_ns;
};

/* ---------------------------------------------------------------- changelog */

enum cl_op {
	CL_CREATE = 1,
	CL_MKDIR,
	CL_MKNOD,
	CL_SYMLINK,
	CL_LINK,
	CL_UNLINK,
	CL_RMDIR,
	CL_RENAME,
	CL_SETATTR,
	CL_WRITE,
	CL_SETXATTR,
	CL_REMOVEXATTR,
	/* provenance (metadata/provenance.c): a process seen for the first
	 * time, a process that used a file version, a file version that a
	 * close after writing produced */
	CL_PROCESS,
	CL_USED,
	CL_GENERATED,
	CL_OP_MAX
};

/* setattr field bits, used by requests and recorded in CL_SETATTR */
#define MFS_SET_MODE (1u << 0)
#define MFS_SET_UID (1u << 1)
#define MFS_SET_GID (1u << 2)
#define MFS_SET_SIZE (1u << 3)
#define MFS_SET_ATIME (1u << 4)
#define MFS_SET_MTIME (1u << 5)
#define MFS_SET_CTIME (1u << 6)
#define MFS_SET_ATIME_NOW (1u << 7)
#define MFS_SET_MTIME_NOW (1u << 8)
/* a write-like change by a caller without CAP_FSETID: drop setuid, and
 * setgid when group-executable, as the kernel does on write */
#define MFS_SET_KILL_PRIV (1u << 9)

struct cl_rec {
	uint64_t seq; /* assigned at commit */
	int64_t time_ns;
	uint32_t op;
	uint64_t ino;
	uint64_t version; /* inode version after the change */
	uint32_t uid, gid, pid;
	uint32_t mode; /* inode mode after the change */
	uint64_t parent, new_parent;
	const char *name, *new_name;
	uint32_t name_len, new_name_len;
	uint64_t replaced; /* rename: inode that was at the target, 0 if none */
	uint32_t fields; /* setattr: MFS_SET_* bits */
	uint32_t nlink; /* link count after the change */
	uint64_t size;
	const char *xname;
	uint32_t xname_len;
	const void *value;
	uint32_t value_len;
	uint64_t proc; /* provenance: the process id (prov_proc.id) */
	uint64_t fversion; /* provenance: the file version used or generated */
	/* the mount whose change it is, on a volume several mount (struct
	 * store's session); 0 on an embedded volume */
	uint64_t origin;
};

const char *cl_op_name(uint32_t op);
/* Encodes without seq (the key carries it). Returns malloc'd bytes. */
int cl_encode(const struct cl_rec *rec, unsigned char **out, size_t *out_len);
/* Decodes into rec; string pointers point into data. */
int cl_decode(const unsigned char *data, size_t len, struct cl_rec *rec);

/* Changelog ids a reader has not seen yet. In a cluster store ids are
 * handed out as records are written and become visible as transactions
 * commit, so a later id can be seen first, and an id whose transaction
 * rolled back never shows (DESIGN.md invariant 3): readers wait for a
 * missing id for a settle time, then take it for one that never comes. */
struct cl_hole {
	uint64_t lo, hi; /* ids lo..hi not seen */
	int64_t since_ns; /* when first missed (CLOCK_MONOTONIC) */
};
struct cl_holes {
	struct cl_hole *v;
	size_t n, cap;
};
/* Notes lo..hi as missing; ids already missing keep their time. */
int cl_holes_note(struct cl_holes *h, uint64_t lo, uint64_t hi, int64_t now_ns);
/* seq was seen: no longer missing. */
int cl_holes_fill(struct cl_holes *h, uint64_t seq);
/* How long a missing id is waited for: 15 s, or METAFS_CHANGELOG_SETTLE_MS
 * (a cluster with slow commits wants more, a test less). */
int64_t cl_settle_ns(void);
int64_t cl_mono_ns(void);

/* ---------------------------------------------------------------- store */

struct store;
struct store_txn;
struct mfs_lock;

typedef int (*dir_list_cb)(void *arg, const char *name, size_t name_len,
			   const struct dirent_rec *d);
typedef int (*xattr_list_cb)(void *arg, const char *name, size_t name_len);
typedef int (*name_cb)(void *arg, uint64_t parent, const char *name, size_t name_len);
typedef int (*chunk_list_cb)(void *arg, uint64_t index);
typedef int (*ino_list_cb)(void *arg, uint64_t ino);
typedef int (*changelog_cb)(void *arg, const struct cl_rec *rec);
typedef int (*inode_scan_cb)(void *arg, uint64_t ino, const struct inode_rec *in);
typedef int (*dirent_scan_cb)(void *arg, uint64_t parent, const char *name, size_t name_len,
			      const struct dirent_rec *d);
typedef int (*data_scan_cb)(void *arg, uint64_t ino, bool chunk, uint64_t idx,
			    const void *val, size_t len);
typedef int (*xattr_scan_cb)(void *arg, uint64_t ino, const char *name, size_t name_len,
			     const void *value, size_t value_len);
/* a name of an inode, from the names index, in inode order */
typedef int (*names_scan_cb)(void *arg, uint64_t ino, uint64_t parent, const char *name, size_t name_len);
/* a store-internal inconsistency found (and fixed, when repair was asked) */
typedef void (*store_issue_cb)(void *arg, uint64_t ino, const char *what, bool repaired);

/*
 * The narrow transactional record interface. Reads see committed data plus
 * the transaction's own writes (READ COMMITTED). A read that precedes a write
 * of the same record passes lock=true. Any op may return MFS_ERETRY, after
 * which the caller aborts and runs the whole operation again.
 * Callbacks return 0 to go on, 1 to stop, <0 to fail.
 */
struct store_ops {
	const char *name;
	/* changelog ids may have gaps: a cluster hands out AUTO_INCREMENT ids
	 * in steps (Galera: auto_increment_increment is the cluster's size),
	 * and an append that rolls back burns its id */
	bool changelog_gaps;
	int (*begin)(struct store *s, struct store_txn **out);
	/* a transaction that only reads committed data, taking no locks */
	int (*begin_read)(struct store *s, struct store_txn **out);
	int (*commit)(struct store_txn *t); /* frees t */
	void (*abort)(struct store_txn *t); /* frees t */

	int (*lock_global)(struct store_txn *t, const char *what); /* named lock row */

	int (*inode_get)(struct store_txn *t, uint64_t ino, struct inode_rec *out, bool lock);
	int (*inode_put)(struct store_txn *t, const struct inode_rec *in);
	int (*inode_del)(struct store_txn *t, uint64_t ino);
	/* whole-volume scans, in key order, for fsck and rebuilds; in == NULL
	 * for a record that does not decode */
	int (*inode_scan)(struct store *s, inode_scan_cb cb, void *arg);
	int (*dirent_scan)(struct store *s, dirent_scan_cb cb, void *arg);
	int (*data_scan)(struct store *s, data_scan_cb cb, void *arg);
	int (*xattr_scan)(struct store *s, xattr_scan_cb cb, void *arg);
	int (*names_scan)(struct store *s, names_scan_cb cb, void *arg);
	/* checks (and with repair, rebuilds) the store's own secondary
	 * indexes, such as the by-cookie copy of directory entries */
	int (*check_indexes)(struct store *s, bool repair, store_issue_cb cb, void *arg);

	/* Optional, for stores where each call is a round trip: directory dir
	 * (locked when lock; its record in dir_out), its entry name (in d) and,
	 * with child_out, the inode the entry names (locked when lock), in one
	 * call. -ENOENT when dir does not exist; 0 otherwise, *found telling
	 * whether the entry does, child_out->ino 0 when it names no inode. */
	int (*entry_get)(struct store_txn *t, uint64_t dir, bool lock, struct inode_rec *dir_out,
			 const char *name, size_t len, bool *found, struct dirent_rec *d,
			 struct inode_rec *child_out);
	int (*dirent_get)(struct store_txn *t, uint64_t parent, const char *name,
			  size_t len, struct dirent_rec *out);
	int (*dirent_put)(struct store_txn *t, uint64_t parent, const char *name,
			  size_t len, const struct dirent_rec *d);
	/* d: the entry as read (its inode and cookie locate the index copies) */
	int (*dirent_del)(struct store_txn *t, uint64_t parent, const char *name,
			  size_t len, const struct dirent_rec *d);
	/* every name of an inode: the directories and names that point at it */
	int (*names_of)(struct store_txn *t, uint64_t ino, name_cb cb, void *arg);
	/* in cookie order, starting at the first cookie >= from */
	int (*dir_list)(struct store_txn *t, uint64_t parent, uint64_t from,
			dir_list_cb cb, void *arg);

	/* *val is malloc'd; the caller frees it */
	int (*xattr_get)(struct store_txn *t, uint64_t ino, const char *name,
			 void **val, size_t *len);
	int (*xattr_put)(struct store_txn *t, uint64_t ino, const char *name,
			 const void *val, size_t len);
	int (*xattr_del)(struct store_txn *t, uint64_t ino, const char *name);
	int (*xattr_list)(struct store_txn *t, uint64_t ino, xattr_list_cb cb, void *arg);

	int (*inline_get)(struct store_txn *t, uint64_t ino, void **val, size_t *len);
	int (*inline_put)(struct store_txn *t, uint64_t ino, const void *val, size_t len);
	int (*inline_del)(struct store_txn *t, uint64_t ino);

	int (*chunk_get)(struct store_txn *t, uint64_t ino, uint64_t idx, void **val, size_t *len);
	/* Calls fn with the stored record in place, without a copy, and
	 * returns what fn returns (-ENOENT when there is no record): a small
	 * read of a large chunk then copies only what it returns. */
	int (*chunk_view)(struct store_txn *t, uint64_t ino, uint64_t idx,
			  int (*fn)(void *arg, const void *rec, size_t len), void *arg);
	int (*chunk_put)(struct store_txn *t, uint64_t ino, uint64_t idx, const void *val, size_t len);
	int (*chunk_del)(struct store_txn *t, uint64_t ino, uint64_t idx);
	int (*chunk_list)(struct store_txn *t, uint64_t ino, uint64_t from, chunk_list_cb cb, void *arg);

	/* inodes with no name left, kept until their last user is gone */
	int (*orphan_put)(struct store_txn *t, uint64_t ino);
	int (*orphan_del)(struct store_txn *t, uint64_t ino);
	int (*orphan_list)(struct store *s, ino_list_cb cb, void *arg);
	/* Optional, for volumes several mounts share: this mount has the
	 * inode open (on) or no longer (off), so that a mount that removes
	 * its last name does not free it while it is open here; and the
	 * inode, locked, with how many other live mounts have it open. A
	 * hold is taken in a transaction that read the inode locked. */
	int (*hold)(struct store_txn *t, uint64_t ino, bool on);
	int (*inode_get_held)(struct store_txn *t, uint64_t ino, struct inode_rec *out, uint32_t *others);

	/* Provenance records (provenance.c): opaque keys of at most
	 * PROV_KEY_MAX bytes, in a key space of their own, listed in key order
	 * by prefix. *val is malloc'd. */
	int (*prov_get)(struct store_txn *t, const void *key, size_t klen, void **val, size_t *len,
			bool lock);
	int (*prov_put)(struct store_txn *t, const void *key, size_t klen, const void *val, size_t len);
	/* provenance records are never deleted by the namespace: this is for
	 * `metafs load`, which empties a target again after a failed load */
	int (*prov_del)(struct store_txn *t, const void *key, size_t klen);
	int (*prov_scan)(struct store_txn *t, const void *prefix, size_t plen,
			 int (*cb)(void *arg, const void *key, size_t klen, const void *val, size_t len),
			 void *arg);
	/* The last record under prefix, if any (cb is not called when there
	 * is none): a file's newest version without reading its older ones.
	 * Optional; prov_scan serves in its place. */
	int (*prov_last)(struct store_txn *t, const void *prefix, size_t plen,
			 int (*cb)(void *arg, const void *key, size_t klen, const void *val, size_t len),
			 void *arg);

	/* appended in the transaction; sequence numbers assigned at commit */
	int (*changelog_append)(struct store_txn *t, const struct cl_rec *rec);
	int (*changelog_read)(struct store *s, uint64_t from, changelog_cb cb, void *arg);
	int (*changelog_bounds)(struct store *s, uint64_t *first, uint64_t *last);
	/* How many records have ids in (after, upto], read as of now (on
	 * Galera, after every commit the cluster made before the call). NULL
	 * where ids have no gaps (changelog_gaps false). */
	int (*changelog_count)(struct store *s, uint64_t after, uint64_t upto, uint64_t *n);

	int (*ino_alloc)(struct store *s, uint64_t *out);
	/* The allocator's floor: every number handed out so far (inodes and
	 * provenance processes) is below *out. A raise_to above it first
	 * raises it, durably, so that no number below raise_to is handed out
	 * afterwards: a volume loaded from a dump keeps the numbers it had.
	 * raise_to 0 only reads (a read-only view can do that much). */
	int (*ino_floor)(struct store *s, uint64_t raise_to, uint64_t *out);
	/* How many other processes have the volume open for writing now: the
	 * live mount sessions of a cluster volume, this process's own left
	 * out. An embedded store opened for writing holds the volume's lock,
	 * so 0; -EOPNOTSUPP where the store cannot tell (an embedded view). */
	int (*writers)(struct store *s, uint64_t *n);
	int (*super_get)(struct store *s, struct superblock *out);
	int (*super_put)(struct store *s, const struct superblock *sb);
	/* makes everything committed so far survive a power loss */
	int (*sync)(struct store *s);
	/* refresh a read-only view to what the writer has committed */
	int (*catch_up)(struct store *s);
	int (*statfs)(struct store *s, struct statvfs *out);
	/* gives back the space of deleted records sooner, when the disk is short */
	int (*make_room)(struct store *s);
	/* File locks of a store that many mounts share (locks.h); NULL in a
	 * store only one daemon serves, where the kernel keeps them. list:
	 * every lock on ino, each with whether it is this mount's and whether
	 * its mount is alive; put: a lock of this mount; del: the locks of
	 * (session, kind, owner) on ino, session 0 meaning this mount. */
	int (*lock_list)(struct store_txn *t, uint64_t ino, int (*cb)(void *arg, const struct mfs_lock *l),
			 void *arg);
	int (*lock_put)(struct store_txn *t, const struct mfs_lock *l);
	int (*lock_del)(struct store_txn *t, uint64_t ino, uint64_t session, uint32_t kind, uint64_t owner);
	/* key=value lines of backend figures for `metafs stats` */
	int (*describe)(struct store *s, int (*emit)(void *, const char *, const char *), void *arg);
	void (*close)(struct store *s);
};

struct store {
	const struct store_ops *ops;
	char *spec;
	/* a store several mounts share: this open's id, which its changelog
	 * records carry as their origin (0: none, an embedded store) */
	uint64_t session;
};

struct store_txn {
	struct store *store;
};

#define STORE_OPEN_CREATE 0x1 /* create an empty store; fail if one exists */
#define STORE_OPEN_READONLY 0x2 /* a read-only view beside a running writer */

/* Opens the store named by spec (a directory for the embedded store). */
int store_open(const char *spec, int flags, struct store **out, char *err, size_t errlen);
int rocks_store_open(const char *dir, int flags, struct store **out, char *err, size_t errlen);
/* mysql://user@host[:port][,host...]/db[?options]; see store_mysql.c */
int mysql_store_open(const char *url, int flags, struct store **out, char *err, size_t errlen);

/* ---------------------------------------------------------------- volume */

struct mfs_volume {
	struct store *store;
	struct superblock sb;
	bool readonly;
	/* free bytes kept for the store's own flushes and compactions */
	uint64_t space_reserve;
	_Atomic int64_t space_checked_ns;
	_Atomic uint64_t space_free;
	_Atomic int64_t space_room_ns; /* last make_room */
};

struct mfs_format_opts {
	uint32_t inline_threshold;
	uint32_t chunk_size;
};

int mfs_format(const char *spec, const struct mfs_format_opts *opts, char *err, size_t errlen);
int mfs_open(const char *spec, int flags, struct mfs_volume **out, char *err, size_t errlen);
void mfs_close(struct mfs_volume *vol);
/* The local directory of a volume's own files (its search index,
 * search.conf): the volume directory itself for the embedded store; for a
 * cluster volume, $METAFS_STATE_DIR (default /var/lib/metafs)/mysql/ and
 * the URL without its options, '/' made '_' (created if missing). */
int mfs_local_dir(const char *spec, char *out, size_t len);

/* ---------------------------------------------------------------- namespace */

/* Who asked; recorded in the changelog. */
struct mfs_ctx {
	uint32_t uid, gid, pid;
};

struct ns_setattr {
	uint32_t mask; /* MFS_SET_* */
	uint32_t mode, uid, gid;
	uint64_t size;
	struct timespec atime, mtime, ctime;
};

/* One run of bytes to write, from an open file's buffer. */
struct ns_extent {
	uint64_t off;
	size_t len;
	const char *data;
};

/* What an operation did to an inode that lost a name. */
struct ns_unlinked {
	uint64_t ino;
	uint32_t nlink; /* link count left; 0 means the inode is now an orphan */
};

typedef int (*ns_readdir_cb)(void *arg, const char *name, size_t name_len,
			     const struct inode_rec *attr, uint32_t type, uint64_t ino,
			     uint64_t next_cookie);

int ns_lookup(struct mfs_volume *v, uint64_t parent, const char *name, struct inode_rec *out);
int ns_getattr(struct mfs_volume *v, uint64_t ino, struct inode_rec *out);
int ns_setattr(struct mfs_volume *v, const struct mfs_ctx *c, uint64_t ino,
	       const struct ns_setattr *req, struct inode_rec *out);
int ns_mknod(struct mfs_volume *v, const struct mfs_ctx *c, uint64_t parent,
	     const char *name, uint32_t mode, uint64_t rdev, struct inode_rec *out);
int ns_mkdir(struct mfs_volume *v, const struct mfs_ctx *c, uint64_t parent,
	     const char *name, uint32_t mode, struct inode_rec *out);
int ns_symlink(struct mfs_volume *v, const struct mfs_ctx *c, uint64_t parent,
	       const char *name, const char *target, struct inode_rec *out);
int ns_readlink(struct mfs_volume *v, uint64_t ino, char *buf, size_t size);
int ns_link(struct mfs_volume *v, const struct mfs_ctx *c, uint64_t ino,
	    uint64_t newparent, const char *newname, struct inode_rec *out);
int ns_unlink(struct mfs_volume *v, const struct mfs_ctx *c, uint64_t parent,
	      const char *name, struct ns_unlinked *gone);
int ns_rmdir(struct mfs_volume *v, const struct mfs_ctx *c, uint64_t parent,
	     const char *name, struct ns_unlinked *gone);
/* flags: RENAME_NOREPLACE, RENAME_EXCHANGE */
int ns_rename(struct mfs_volume *v, const struct mfs_ctx *c, uint64_t parent,
	      const char *name, uint64_t newparent, const char *newname,
	      unsigned flags, struct ns_unlinked *gone);
/* Lists from cookie (0 = start, including "." and ".."); attr is filled
 * when want_attr. The callback returns 1 to stop. */
int ns_readdir(struct mfs_volume *v, uint64_t ino, uint64_t cookie, bool want_attr,
	       ns_readdir_cb cb, void *arg);
int ns_statfs(struct mfs_volume *v, struct statvfs *out);

/* flags: XATTR_CREATE, XATTR_REPLACE */
int ns_setxattr(struct mfs_volume *v, const struct mfs_ctx *c, uint64_t ino,
		const char *name, const void *value, size_t size, int flags);
/* size 0 asks for the length; returns the length or -ERANGE / -ENODATA */
int ns_getxattr(struct mfs_volume *v, uint64_t ino, const char *name, void *buf, size_t size);
int ns_listxattr(struct mfs_volume *v, uint64_t ino, char *buf, size_t size);
int ns_removexattr(struct mfs_volume *v, const struct mfs_ctx *c, uint64_t ino, const char *name);

/* Reads committed bytes; returns the count (short at end of file). */
ssize_t ns_read(struct mfs_volume *v, uint64_t ino, uint64_t off, size_t size, char *buf);
/* Commits buffered writes in one transaction; mtime is when they were made. */
int ns_write(struct mfs_volume *v, const struct mfs_ctx *c, uint64_t ino,
	     const struct ns_extent *ext, size_t n, const struct timespec *mtime,
	     struct inode_rec *out);
/* fallocate(2): default mode and FALLOC_FL_KEEP_SIZE reserve nothing (space
 * is taken as bytes are written) but extend the size; PUNCH_HOLE and
 * ZERO_RANGE zero the range. Other modes are -EOPNOTSUPP. */
int ns_fallocate(struct mfs_volume *v, const struct mfs_ctx *c, uint64_t ino, int mode,
		 uint64_t off, uint64_t len);
int ns_sync(struct mfs_volume *v);
/* Frees an inode whose last name is gone, once nothing uses it any more. */
int ns_reclaim(struct mfs_volume *v, uint64_t ino);
/* Volumes several mounts share (store op hold): a file opened here, with
 * its inode as it is now; and closed here for the last time, which frees
 * it when its last name is gone and no other mount has it open (*freed).
 * Without the store op, ns_hold is ns_getattr and ns_unhold does nothing. */
int ns_hold(struct mfs_volume *v, uint64_t ino, struct inode_rec *out);
int ns_unhold(struct mfs_volume *v, uint64_t ino, bool *freed);
/* ns_mknod of a regular file that is opened here (see ns_hold). */
int ns_create_held(struct mfs_volume *v, const struct mfs_ctx *c, uint64_t parent, const char *name,
		   uint32_t mode, struct inode_rec *out);
/* Frees every orphan left by a crash; returns how many. */
int ns_reclaim_orphans(struct mfs_volume *v);

/* ---------------------------------------------------------------- provenance */

struct u64_vec; /* common.h */

/*
 * Lineage records (provenance.c), kept by the store beside the inodes and
 * published on the changelog in the same transaction:
 *   a process, as captured from /proc when it first touched the volume;
 *   a version of a file's content, made by every close after a write (or
 *     first seen when a file changed while capture was off);
 *   process P used file@version; file@version was generated by P; and
 *     file@version was derived from every file@version P's job (P and
 *     the processes it started, up to a shell or job runner) had used
 *     before it was closed.
 * Versions are never deleted, so the lineage of a deleted file stays.
 */
#define PROV_KEY_MAX 64
#define PROV_DIGEST_LEN 32 /* SHA-256 of the content, for inline files */

struct prov_proc {
	uint64_t id; /* from the volume's id allocator; the key of its record */
	uint32_t pid, ppid, uid, gid;
	int64_t start_ns; /* when the process started (wall clock) */
	uint64_t parent; /* the parent process's id if it was captured, else 0 */
	int64_t parent_start_ns;
	/* The job the process belongs to: its nearest ancestor reached
	 * through programs that are not shells or job runners (itself when
	 * its parent is one), or the job of the program it was before an
	 * exec. A use by any process of a job counts for every version the
	 * job writes afterwards: a compiler driver's cc1 reads x.c, its
	 * assembler writes x.o; a shell's child opens `< in`, then execs the
	 * command that writes. */
	uint64_t job;
	char *exe, *cwd;
	char *argv; /* the arguments, each ended by a NUL */
	size_t argv_len;
};

struct prov_version {
	uint64_t ino, version;
	uint64_t inode_version;
	uint64_t size;
	struct timespec mtime;
	int64_t time_ns; /* when it was made, or first seen */
	bool has_digest;
	unsigned char digest[PROV_DIGEST_LEN];
	uint64_t parent; /* the directory and name the file had then */
	char name[MFS_NAME_MAX + 1];
	uint64_t gen[8]; /* the processes that wrote it (none: first seen being read) */
	size_t ngen;
};

/* A file version some process used: the edge a version derived from it
 * gets, user naming that process. */
struct prov_use {
	uint64_t ino, version, user;
};

/* A job's part in a version: the version derives from the first `uses`
 * uses the job recorded (ns_prov_used numbers them 1, 2, ...). */
struct prov_job_uses {
	uint64_t job, uses;
};

/* A use recorded after the fact, with others (ns_prov_uses) or in the
 * transaction of a version (prov_gen.uses): proc, of job `job`, used
 * ino@version at time_ns, the job's seq-th use; record_proc, record_job:
 * write their records too. fresh: the caller knows proc had not used that
 * version (no look in the store for an earlier use). */
struct prov_use_rec {
	const struct prov_proc *proc, *job;
	uint64_t ino, version, seq;
	int64_t time_ns;
	bool record_proc, record_job, fresh;
};

/* The writers of a file whose handle is being closed. record[i] asks for
 * procs[i]'s own record to be written in the same transaction (the
 * writers' jobs have been recorded with their first use). */
struct prov_gen {
	const struct prov_proc *const *procs;
	const bool *record;
	size_t n;
	/* the jobs of the writers, and of the processes that fed them through
	 * pipes, with how many uses each had recorded when the file was
	 * closed: what the version derives from. A job that used nothing
	 * need not be listed. */
	const struct prov_job_uses *jobs;
	size_t njobs;
	/* the file's directory and name now, when the caller knows them
	 * (name NULL: looked up in the store) */
	uint64_t parent;
	const char *name;
	/* the file's newest version number (0: none yet), when the caller
	 * knows it for sure (every version of the file was made through it
	 * since it learnt the number); otherwise it is looked up */
	bool current_known;
	uint64_t current;
	/* uses to record first, in the same transaction (any processes') */
	const struct prov_use_rec *uses;
	size_t nuses;
};

/* Process p (of job `job`, which is p itself or an ancestor) used the
 * current version of regular file ino. seq numbers the use among the job's
 * uses (1, 2, ... in the order the caller recorded them; a number whose
 * transaction failed is simply missing). *version: on entry the number of
 * the current version when the caller knows the content is that version
 * (0: looked up), on return the version used. A file whose content
 * changed without a version being made (capture off) gets one first.
 * record[0], record[1]: write p's, job's own record too. A process's second
 * use of one version records nothing. */
int ns_prov_used(struct mfs_volume *v, const struct prov_proc *p, const struct prov_proc *job,
		 const bool record[2], uint64_t ino, uint64_t seq, uint64_t *version);
/* Records uses of versions whose numbers the caller knows, in one
 * transaction (see prov_use_rec). */
int ns_prov_uses(struct mfs_volume *v, const struct prov_use_rec *u, size_t n);
/* Commits buffered writes like ns_write and, in the same transaction, the
 * new version they close (gen may be NULL: no version). With n == 0 only
 * the version is made. */
int ns_write_version(struct mfs_volume *v, const struct mfs_ctx *c, uint64_t ino,
		     const struct ns_extent *ext, size_t n, const struct timespec *mtime,
		     const struct prov_gen *gen, uint64_t *version);

void prov_proc_free(struct prov_proc *p);
/* Readers, in any transaction (a read-only view included). */
int prov_proc_get(struct store_txn *t, uint64_t id, struct prov_proc *out);
/* the newest version number of a file; -ENOENT when it has none */
int prov_current(struct store_txn *t, uint64_t ino, uint64_t *version);
int prov_version_get(struct store_txn *t, uint64_t ino, uint64_t version, struct prov_version *out);
typedef int (*prov_version_cb)(void *arg, const struct prov_version *pv);
int prov_versions(struct store_txn *t, uint64_t ino, prov_version_cb cb, void *arg);
/* an edge between two file versions, through the process that made it */
typedef int (*prov_edge_cb)(void *arg, uint64_t ino, uint64_t version, uint64_t proc);
/* what file@version was derived from */
int prov_sources(struct store_txn *t, uint64_t ino, uint64_t version, prov_edge_cb cb, void *arg);
/* what was derived from file@version */
int prov_derived(struct store_txn *t, uint64_t ino, uint64_t version, prov_edge_cb cb, void *arg);
/* what a process, or the processes of the job it leads, used, in (ino,
 * version) order; the third number is the process that used it */
int prov_used_by(struct store_txn *t, uint64_t proc, prov_edge_cb cb, void *arg);

/*
 * The lineage graph as a search index keeps it, in two kinds of edge:
 * use: src@src_version was the seq-th use of job; made: ino@version derives
 * from the first n uses of job. ino@version derives from src@src_version
 * when a job has a use of it and a made edge with n >= its seq. A version of
 * the layout that listed its sources appears as a job of its own (an id
 * with the top bit set, from the version) that used each and made it.
 */
struct prov_graph_sink {
	int (*use)(void *arg, uint64_t src, uint64_t src_version, uint64_t job, uint64_t seq);
	int (*made)(void *arg, uint64_t job, uint64_t n, uint64_t ino, uint64_t version);
	void *arg;
};
/* the use edge of proc's use of ino@version; -ENOENT when there is none
 * (or it was recorded before uses were numbered) */
int prov_use_edge(struct store_txn *t, uint64_t proc, uint64_t ino, uint64_t version,
		  const struct prov_graph_sink *s);
/* the made edges of ino@version */
int prov_version_edges(struct store_txn *t, uint64_t ino, uint64_t version, const struct prov_graph_sink *s);
/* every edge the volume holds */
int prov_graph_scan(struct store_txn *t, const struct prov_graph_sink *s);
/* The files whose newest version derives, however far up, from some
 * version of ino (ino itself left out), walking the records; in inode
 * order, one each. */
int prov_descendants(struct store_txn *t, uint64_t ino, struct u64_vec *out);

/* ---------------------------------------------------------------- fsck */

struct fsck_opts {
	bool repair; /* fix what is safe to fix */
	bool scrub; /* verify every data record's checksum */
	/* kind: a short stable word; detail: one line for people */
	void (*report)(void *arg, const char *kind, uint64_t ino, const char *detail, bool repaired);
	/* phase and counts so far; total is 0 when unknown */
	void (*progress)(void *arg, const char *phase, uint64_t done, uint64_t total);
	void *arg;
};

struct fsck_result {
	uint64_t inodes, directories, files, entries, data_records, xattrs, changelog_records;
	uint64_t scrubbed_bytes;
	uint64_t problems, repaired;
};

/* Checks the whole volume, which must not be mounted. */
int mfs_fsck(struct mfs_volume *v, const struct fsck_opts *o, struct fsck_result *r);

/* Runs fn in a transaction, retrying on MFS_ERETRY with backoff. */
int ns_txn_run(struct mfs_volume *v, int (*fn)(struct store_txn *t, void *arg), void *arg);
/* ns_reclaim's (and ns_unhold's) work inside t, for a caller that runs
 * more in the same transaction; *freed tells whether it freed the inode. */
int ns_reclaim_txn(struct store_txn *t, struct mfs_volume *v, uint64_t ino, bool *freed);

#endif
