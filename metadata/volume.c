/* SPDX-License-Identifier: Apache-2.0 */
/* Volumes: naming a store, formatting it, opening it with clear errors. */
#include "metadata.h"
#include "common.h"

#include <errno.h>
#include <openssl/rand.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

int store_open(const char *spec, int flags, struct store **out, char *err, size_t errlen)
{
	if (!strncmp(spec, "mysql://", 8))
		return mysql_store_open(spec, flags, out, err, errlen);
	return rocks_store_open(spec, flags, out, err, errlen);
}

int mfs_local_dir(const char *spec, char *out, size_t len)
{
	if (strncmp(spec, "mysql://", 8) != 0) {
		snprintf(out, len, "%s", spec);
		return 0;
	}
	const char *base = getenv("METAFS_STATE_DIR");
	if (!base || !*base)
		base = "/var/lib/metafs";
	char name[1024];
	size_t n = 0;
	for (const char *p = spec + 8; *p && *p != '?' && n + 1 < sizeof name; p++)
		name[n++] = *p == '/' ? '_' : *p;
	name[n] = '\0';
	char parent[4096];
	snprintf(parent, sizeof parent, "%s/mysql", base);
	snprintf(out, len, "%s/%s", parent, name);
	/* made here so that the first indexer or `metafs find` finds it */
	mkdir(base, 0755);
	mkdir(parent, 0755);
	if (mkdir(out, 0755) != 0 && errno != EEXIST)
		return -errno;
	return 0;
}

static bool is_pow2(uint32_t x)
{
	return x && !(x & (x - 1));
}

int mfs_format(const char *spec, const struct mfs_format_opts *opts, char *err, size_t errlen)
{
	struct superblock sb = {
		.format_version = MFS_FORMAT_VERSION,
		.inline_threshold = opts && opts->inline_threshold != UINT32_MAX ? opts->inline_threshold
										  : MFS_DEFAULT_INLINE_THRESHOLD,
		.chunk_size = opts && opts->chunk_size ? opts->chunk_size : MFS_DEFAULT_CHUNK_SIZE,
		.created_ns = mfs_now_ns(),
	};
	if (!is_pow2(sb.chunk_size) || sb.chunk_size < 4096 || sb.chunk_size > MFS_MAX_CHUNK_SIZE) {
		snprintf(err, errlen, "chunk size %u: must be a power of two from 4K to 16M", sb.chunk_size);
		return -EINVAL;
	}
	if (sb.inline_threshold > (1u << 20)) {
		snprintf(err, errlen, "inline threshold %u: must be at most 1M", sb.inline_threshold);
		return -EINVAL;
	}
	if (strncmp(spec, "mysql://", 8) != 0) {
		if (mkdir(spec, 0750) != 0 && errno != EEXIST) {
			int e = errno;
			snprintf(err, errlen, "%s: cannot create the volume directory: %s", spec, strerror(e));
			return -e;
		}
		char path[4096];
		snprintf(path, sizeof path, "%s/db", spec);
		if (access(path, F_OK) == 0) {
			snprintf(err, errlen, "%s already holds a metafs volume; pick another directory", spec);
			return -EEXIST;
		}
	}
	if (RAND_bytes(sb.uuid, sizeof sb.uuid) != 1) {
		snprintf(err, errlen, "cannot generate a volume UUID");
		return -EIO;
	}
	sb.uuid[6] = (sb.uuid[6] & 0x0f) | 0x40; /* RFC 4122 version 4 */
	sb.uuid[8] = (sb.uuid[8] & 0x3f) | 0x80;

	struct store *s;
	int rc = store_open(spec, STORE_OPEN_CREATE, &s, err, errlen);
	if (rc)
		return rc;
	struct timespec now = mfs_now();
	struct inode_rec root = {
		.ino = MFS_ROOT_INO,
		.mode = S_IFDIR | 0755,
		.nlink = 2,
		.uid = getuid(),
		.gid = getgid(),
		.atime = now, .mtime = now, .ctime = now, .btime = now,
		.version = 1,
		.parent = MFS_ROOT_INO,
		.next_cookie = 3,
	};
	struct store_txn *t;
	rc = s->ops->begin(s, &t);
	if (!rc) {
		rc = s->ops->inode_put(t, &root);
		if (rc)
			s->ops->abort(t);
		else
			rc = s->ops->commit(t);
	}
	if (!rc)
		rc = s->ops->super_put(s, &sb);
	if (!rc)
		rc = s->ops->sync(s);
	if (rc)
		snprintf(err, errlen, "%s: cannot write the new volume: %s", spec, strerror(-rc));
	s->ops->close(s);
	return rc;
}

int mfs_open(const char *spec, int flags, struct mfs_volume **out, char *err, size_t errlen)
{
	struct stat st;
	bool embedded = strncmp(spec, "mysql://", 8) != 0;
	if (embedded) {
		char path[4096];
		if (stat(spec, &st) != 0) {
			snprintf(err, errlen, "%s: no such volume (create one with: metafs format %s)", spec, spec);
			return -ENOENT;
		}
		snprintf(path, sizeof path, "%s/db/CURRENT", spec);
		if (access(path, F_OK) != 0) {
			snprintf(err, errlen, "%s is not a metafs volume (create one with: metafs format DIR)", spec);
			return -ENOENT;
		}
	}
	struct store *s;
	char serr[512] = "";
	int rc = store_open(spec, flags, &s, serr, sizeof serr);
	if (rc == -EBUSY) {
		snprintf(err, errlen, "%s is in use by another metafs process (is it mounted already?)", spec);
		return rc;
	}
	if (rc) {
		snprintf(err, errlen, "%s: cannot open the volume: %s", spec, serr[0] ? serr : strerror(-rc));
		return rc;
	}
	struct mfs_volume *v = calloc(1, sizeof *v);
	if (!v) {
		s->ops->close(s);
		return -ENOMEM;
	}
	v->store = s;
	v->readonly = flags & STORE_OPEN_READONLY;
	struct statvfs fs;
	if (s->ops->statfs(s, &fs) == 0) {
		/* A store that fills its disk stops taking writes, deletions
		 * included, until it is reopened: keep 5% of the disk (192 MiB
		 * to 2 GiB) for its memtable flushes and compactions. */
		uint64_t total = (uint64_t)fs.f_blocks * fs.f_frsize;
		uint64_t r = total / 20;
		if (r < (192ULL << 20))
			r = 192ULL << 20;
		if (r > (2ULL << 30))
			r = 2ULL << 30;
		v->space_reserve = r;
	}
	rc = s->ops->super_get(s, &v->sb);
	if (rc) {
		snprintf(err, errlen, "%s: the superblock is missing or unreadable; not a metafs volume?", spec);
	} else if (v->sb.format_version != MFS_FORMAT_VERSION) {
		snprintf(err, errlen, "%s has volume format version %u; this metafs reads version %u",
			 spec, v->sb.format_version, MFS_FORMAT_VERSION);
		rc = -EPROTO;
	}
	if (rc) {
		mfs_close(v);
		return rc;
	}
	*out = v;
	return 0;
}

void mfs_close(struct mfs_volume *v)
{
	if (!v)
		return;
	if (v->store)
		v->store->ops->close(v->store);
	free(v);
}
