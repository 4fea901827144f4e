/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Plants one kind of damage in an unmounted volume, for the fsck tests:
 *   plant_fault VOLUME KIND [PATH]
 * PATH is a path inside the volume ("/dir/file").
 */
#include "metadata.h"
#include "blockstore.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

static struct mfs_volume *v;
static struct store *s;

static uint64_t resolve(const char *path)
{
	uint64_t ino = MFS_ROOT_INO;
	char *copy = strdup(path);
	for (char *save = NULL, *c = strtok_r(copy, "/", &save); c; c = strtok_r(NULL, "/", &save)) {
		struct inode_rec in;
		if (ns_lookup(v, ino, c, &in)) {
			fprintf(stderr, "plant_fault: %s: not found\n", path);
			exit(2);
		}
		ino = in.ino;
	}
	free(copy);
	return ino;
}

static struct store_txn *begin(void)
{
	struct store_txn *t;
	if (s->ops->begin(s, &t))
		exit(2);
	return t;
}

static void commit(struct store_txn *t)
{
	if (s->ops->commit(t)) {
		fprintf(stderr, "plant_fault: commit failed\n");
		exit(2);
	}
}

static void new_unnamed(uint32_t nlink)
{
	uint64_t ino;
	s->ops->ino_alloc(s, &ino);
	struct store_txn *t = begin();
	struct inode_rec in = { .ino = ino, .mode = S_IFREG | 0644, .nlink = nlink, .version = 1, .size = 5 };
	s->ops->inode_put(t, &in);
	unsigned char *rec;
	size_t len;
	bs_frame("lost!", 5, &rec, &len);
	s->ops->inline_put(t, ino, rec, len);
	free(rec);
	commit(t);
	printf("%llu\n", (unsigned long long)ino);
}

int main(int argc, char **argv)
{
	if (argc < 3) {
		fprintf(stderr, "usage: plant_fault VOLUME KIND [PATH] [N]\n");
		return 2;
	}
	char err[512];
	if (mfs_open(argv[1], 0, &v, err, sizeof err)) {
		fprintf(stderr, "plant_fault: %s\n", err);
		return 2;
	}
	s = v->store;
	const char *kind = argv[2], *path = argc > 3 ? argv[3] : "/";
	struct store_txn *t;
	struct inode_rec in;
	if (!strcmp(kind, "delete-inode")) {
		uint64_t ino = resolve(path);
		t = begin();
		s->ops->inode_del(t, ino);
		commit(t);
	} else if (!strcmp(kind, "flip-byte")) {
		uint64_t ino = resolve(path);
		t = begin();
		s->ops->inode_get(t, ino, &in, false);
		void *rec;
		size_t len;
		bool chunk = in.flags & INODE_F_CHUNKED;
		int rc = chunk ? s->ops->chunk_get(t, ino, 0, &rec, &len) : s->ops->inline_get(t, ino, &rec, &len);
		int hdr = rc ? -1 : bs_payload_offset(rec, len);
		if (hdr < 0 || len <= (size_t)hdr)
			return 2;
		((unsigned char *)rec)[hdr + (len - hdr) / 2] ^= 0x10;
		if (chunk)
			s->ops->chunk_put(t, ino, 0, rec, len);
		else
			s->ops->inline_put(t, ino, rec, len);
		free(rec);
		commit(t);
	} else if (!strcmp(kind, "unnamed-inode")) {
		new_unnamed(1);
	} else if (!strcmp(kind, "unreferenced-inode")) {
		new_unnamed(0);
	} else if (!strcmp(kind, "nlink")) {
		uint64_t ino = resolve(path);
		t = begin();
		s->ops->inode_get(t, ino, &in, true);
		in.nlink = argc > 4 ? (uint32_t)atoi(argv[4]) : 7;
		s->ops->inode_put(t, &in);
		commit(t);
	} else if (!strcmp(kind, "dir-parent")) {
		uint64_t ino = resolve(path);
		t = begin();
		s->ops->inode_get(t, ino, &in, true);
		in.parent = 424242;
		s->ops->inode_put(t, &in);
		commit(t);
	} else if (!strcmp(kind, "orphan-data")) {
		t = begin();
		unsigned char *rec;
		size_t len;
		bs_frame("x", 1, &rec, &len);
		s->ops->chunk_put(t, 987654321, 3, rec, len);
		free(rec);
		s->ops->xattr_put(t, 987654321, "user.gone", "v", 1);
		commit(t);
	} else {
		fprintf(stderr, "plant_fault: unknown kind %s\n", kind);
		return 2;
	}
	mfs_close(v);
	return 0;
}
