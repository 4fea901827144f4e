/* SPDX-License-Identifier: Apache-2.0 */
/* File data through the namespace: inline and chunked storage, the moves
 * between them, holes, truncation, checksums, and a random differential
 * test against a plain byte array. */
#include "harness.h"
#include "blockstore.h"

#include <linux/falloc.h>
#include <openssl/evp.h>
#include <sys/stat.h>

#define INLINE 1024u
#define CHUNK 4096u

static struct mfs_ctx C = { 0, 0, 1 };

static uint64_t mkfile(struct mfs_volume *v, const char *name)
{
	struct inode_rec in;
	return ns_mknod(v, &C, MFS_ROOT_INO, name, S_IFREG | 0644, 0, &in) ? 0 : in.ino;
}

static int wr(struct mfs_volume *v, uint64_t ino, uint64_t off, const void *data, size_t len)
{
	struct ns_extent e = { off, len, data };
	return ns_write(v, &C, ino, &e, 1, NULL, NULL);
}

static int trunc_to(struct mfs_volume *v, uint64_t ino, uint64_t size)
{
	struct ns_setattr r = { .mask = MFS_SET_SIZE, .size = size };
	struct inode_rec in;
	return ns_setattr(v, &C, ino, &r, &in);
}

struct counter {
	int n;
};

static int count_cb(void *arg, uint64_t idx)
{
	((struct counter *)arg)->n++;
	return 0;
}

/* How many chunk records, and whether an inline record exists. */
static void layout(struct mfs_volume *v, uint64_t ino, int *chunks, bool *has_inline, bool *chunked)
{
	struct store *s = v->store;
	struct store_txn *t;
	s->ops->begin(s, &t);
	struct counter c = { 0 };
	s->ops->chunk_list(t, ino, 0, count_cb, &c);
	*chunks = c.n;
	void *val = NULL;
	size_t len;
	*has_inline = s->ops->inline_get(t, ino, &val, &len) == 0;
	free(val);
	struct inode_rec in;
	s->ops->inode_get(t, ino, &in, false);
	*chunked = in.flags & INODE_F_CHUNKED;
	s->ops->abort(t);
}

static void test_transitions(struct mfs_volume *v)
{
	uint64_t f = mkfile(v, "grow");
	char buf[20000], rd[20000];
	for (size_t i = 0; i < sizeof buf; i++)
		buf[i] = (char)(i * 7 + 3);
	int chunks;
	bool inl, chunked;
	CHECK_RC(wr(v, f, 0, buf, 1000), 0, "small write");
	layout(v, f, &chunks, &inl, &chunked);
	CHECK(inl && !chunked && chunks == 0, "a small file is stored inline");
	CHECK_RC(wr(v, f, 1000, buf + 1000, 9000), 0, "grow past the threshold");
	layout(v, f, &chunks, &inl, &chunked);
	CHECK(!inl && chunked && chunks == 3, "a larger file moves to chunks (%d)", chunks);
	CHECK(ns_read(v, f, 0, sizeof rd, rd) == 10000 && !memcmp(rd, buf, 10000), "its bytes survive the move");
	CHECK_RC(trunc_to(v, f, 500), 0, "truncate below the threshold");
	layout(v, f, &chunks, &inl, &chunked);
	CHECK(inl && !chunked && chunks == 0, "a file truncated small moves back inline");
	CHECK(ns_read(v, f, 0, sizeof rd, rd) == 500 && !memcmp(rd, buf, 500), "its bytes survive the move back");
	CHECK_RC(trunc_to(v, f, 3000), 0, "truncate up");
	CHECK(ns_read(v, f, 0, sizeof rd, rd) == 3000 && !memcmp(rd, buf, 500) && rd[500] == 0 && rd[2999] == 0,
	      "a truncate up reads zeros");
}

static void test_holes(struct mfs_volume *v)
{
	uint64_t f = mkfile(v, "sparse");
	CHECK_RC(wr(v, f, 10 * 1024 * 1024, "end", 3), 0, "write at 10 MiB");
	int chunks;
	bool inl, chunked;
	layout(v, f, &chunks, &inl, &chunked);
	CHECK(chunks == 1, "a sparse file stores only the chunk written (%d)", chunks);
	char rd[8192];
	memset(rd, 'x', sizeof rd);
	CHECK(ns_read(v, f, 4096 * 100, sizeof rd, rd) == (ssize_t)sizeof rd, "a read in the hole");
	bool zero = true;
	for (size_t i = 0; i < sizeof rd; i++)
		zero &= rd[i] == 0;
	CHECK(zero, "holes read as zeros");
	struct inode_rec in;
	ns_getattr(v, f, &in);
	CHECK(in.size == 10 * 1024 * 1024 + 3, "size counts the hole");

	/* a truncate inside a chunk must not let the cut bytes come back */
	uint64_t g = mkfile(v, "cut");
	char ones[CHUNK * 2];
	memset(ones, 1, sizeof ones);
	wr(v, g, 0, ones, sizeof ones);
	trunc_to(v, g, CHUNK + 100);
	trunc_to(v, g, CHUNK * 2);
	ns_read(v, g, CHUNK, CHUNK, rd);
	CHECK(rd[99] == 1 && rd[100] == 0 && rd[CHUNK - 1] == 0, "bytes cut by a truncate read as zeros after regrowing");
}

static void test_fallocate(struct mfs_volume *v)
{
	uint64_t f = mkfile(v, "falloc");
	CHECK_RC(ns_fallocate(v, &C, f, 0, 0, 3 * CHUNK), 0, "fallocate extends");
	struct inode_rec in;
	ns_getattr(v, f, &in);
	CHECK(in.size == 3 * CHUNK, "to offset + length");
	CHECK_RC(ns_fallocate(v, &C, f, FALLOC_FL_KEEP_SIZE, 0, 10 * CHUNK), 0, "KEEP_SIZE");
	ns_getattr(v, f, &in);
	CHECK(in.size == 3 * CHUNK, "keeps the size");
	char ones[3 * CHUNK];
	memset(ones, 1, sizeof ones);
	wr(v, f, 0, ones, sizeof ones);
	CHECK_RC(ns_fallocate(v, &C, f, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, 100, 2 * CHUNK), 0,
		 "punch a hole over a chunk boundary");
	int chunks;
	bool inl, chunked;
	layout(v, f, &chunks, &inl, &chunked);
	char rd[3 * CHUNK];
	ns_read(v, f, 0, sizeof rd, rd);
	CHECK(rd[99] == 1 && rd[100] == 0 && rd[2 * CHUNK + 99] == 0 && rd[2 * CHUNK + 100] == 1,
	      "the hole reads as zeros, its edges keep their bytes");
	CHECK_RC(ns_fallocate(v, &C, f, FALLOC_FL_PUNCH_HOLE, 0, 10), -EOPNOTSUPP, "PUNCH_HOLE without KEEP_SIZE");
	CHECK_RC(ns_fallocate(v, &C, f, FALLOC_FL_COLLAPSE_RANGE, 0, CHUNK), -EOPNOTSUPP, "COLLAPSE_RANGE");
	CHECK_RC(ns_fallocate(v, &C, f, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, 0, 3 * CHUNK), 0, "punch everything");
	layout(v, f, &chunks, &inl, &chunked);
	CHECK(chunks == 0, "whole chunks in a hole are dropped (%d left)", chunks);
}

static void test_checksum(struct mfs_volume *v)
{
	uint64_t f = mkfile(v, "corrupt");
	char buf[3 * CHUNK];
	memset(buf, 'a', sizeof buf);
	wr(v, f, 0, buf, sizeof buf);
	struct store *s = v->store;
	struct store_txn *t;
	s->ops->begin(s, &t);
	void *rec;
	size_t len;
	s->ops->chunk_get(t, f, 1, &rec, &len);
	((unsigned char *)rec)[bs_payload_offset(rec, len) + 10] ^= 0x40; /* flip one bit */
	s->ops->chunk_put(t, f, 1, rec, len);
	free(rec);
	s->ops->commit(t);
	char rd[CHUNK];
	CHECK(ns_read(v, f, 0, CHUNK, rd) == CHUNK, "an intact chunk still reads");
	CHECK(ns_read(v, f, CHUNK, CHUNK, rd) == -EIO, "a flipped bit in a chunk is an EIO, not bad data");
	CHECK(ns_read(v, f, CHUNK + 5, 10, rd) == -EIO, "so is a small read of the damaged block");

	uint64_t g = mkfile(v, "corrupt-inline");
	wr(v, g, 0, "hello", 5);
	s->ops->begin(s, &t);
	s->ops->inline_get(t, g, &rec, &len);
	((unsigned char *)rec)[bs_payload_offset(rec, len)] ^= 1;
	s->ops->inline_put(t, g, rec, len);
	free(rec);
	s->ops->commit(t);
	CHECK(ns_read(v, g, 0, 5, rd) == -EIO, "corrupt inline data is an EIO too");
}

static uint64_t rnd_state = 88172645463325252ULL;

static uint64_t rnd(void)
{
	rnd_state ^= rnd_state << 13;
	rnd_state ^= rnd_state >> 7;
	rnd_state ^= rnd_state << 17;
	return rnd_state;
}

/* Frames checksum each 4 KiB block: a read verifies the blocks it returns,
 * and records written in the first format (one SHA-256) still read. */
static void test_frames(void)
{
	char payload[3 * 4096 + 100];
	for (size_t i = 0; i < sizeof payload; i++)
		payload[i] = (char)(i * 7);
	unsigned char *rec;
	size_t len;
	CHECK(bs_frame(payload, sizeof payload, &rec, &len) == 0, "a payload is framed");
	int h = bs_payload_offset(rec, len);
	CHECK(h > 0 && (size_t)h == bs_header_len(sizeof payload) && len == h + sizeof payload,
	      "the header holds one checksum per block");
	const void *pl;
	size_t plen;
	CHECK(bs_unframe(rec, len, &pl, &plen) == 0 && plen == sizeof payload &&
		      memcmp(pl, payload, plen) == 0, "an intact frame verifies");
	rec[h + 4096 + 17] ^= 1; /* damage block 1 */
	CHECK(bs_unframe(rec, len, &pl, &plen) == -EIO, "a damaged frame fails whole");
	CHECK(bs_unframe_range(rec, len, 0, 4096, &pl, &plen) == 0, "block 0 still verifies");
	CHECK(bs_unframe_range(rec, len, 2 * 4096, sizeof payload, &pl, &plen) == 0, "so do blocks 2 and 3");
	CHECK(bs_unframe_range(rec, len, 4000, 4100, &pl, &plen) == -EIO, "a range touching block 1 fails");
	rec[h + 4096 + 17] ^= 1;
	rec[2] ^= 1; /* the length no longer matches the record */
	CHECK(bs_payload_offset(rec, len) == -EIO && bs_unframe(rec, len, &pl, &plen) == -EIO,
	      "a header that disagrees with the record's size is rejected");
	free(rec);
	CHECK(bs_frame("", 0, &rec, &len) == 0 && bs_unframe(rec, len, &pl, &plen) == 0 && plen == 0,
	      "an empty payload frames and verifies");
	free(rec);

	/* format 1: [1][SHA-256][payload] */
	unsigned char old[33 + 5] = { 1 };
	memcpy(old + 33, "hello", 5);
	EVP_Digest("hello", 5, old + 1, NULL, EVP_sha256(), NULL);
	CHECK(bs_unframe_range(old, sizeof old, 0, 1, &pl, &plen) == 0 && plen == 5 &&
		      memcmp(pl, "hello", 5) == 0, "a format-1 record still reads");
	old[35] ^= 1;
	CHECK(bs_unframe_range(old, sizeof old, 0, 1, &pl, &plen) == -EIO, "and its checksum still counts");
}

static void test_differential(struct mfs_volume *v)
{
	enum { MAXSZ = 64 * 1024 };
	unsigned char *model = calloc(1, MAXSZ), *rd = malloc(MAXSZ), *data = malloc(MAXSZ);
	size_t size = 0;
	uint64_t f = mkfile(v, "random");
	int mismatches = 0, errors = 0;
	for (int step = 0; step < 1500; step++) {
		int kind = (int)(rnd() % 10);
		if (kind < 5) { /* one or several extents in one commit */
			struct ns_extent e[3];
			int n = 1 + (int)(rnd() % 3);
			uint64_t pos = rnd() % (MAXSZ / 2);
			int used = 0;
			for (int i = 0; i < n; i++) {
				size_t len = 1 + (size_t)(rnd() % (rnd() % 4 ? 300 : 9000));
				if (pos + len > MAXSZ)
					break;
				for (size_t k = 0; k < len; k++)
					data[pos + k] = (unsigned char)rnd();
				e[used++] = (struct ns_extent){ pos, len, (const char *)data + pos };
				memcpy(model + pos, data + pos, len);
				if (pos + len > size)
					size = pos + len;
				pos += len + rnd() % 5000; /* sorted, gaps allowed */
			}
			if (used && ns_write(v, &C, f, e, (size_t)used, NULL, NULL))
				errors++;
		} else if (kind == 7) { /* punch a hole, keeping the size */
			uint64_t off = rnd() % MAXSZ;
			uint64_t len = 1 + rnd() % 20000;
			if (off < size)
				memset(model + off, 0, (size_t)(off + len > size ? size - off : len));
			if (ns_fallocate(v, &C, f, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, off, len))
				errors++;
		} else if (kind < 7) {
			size_t ns = (size_t)(rnd() % MAXSZ);
			if (ns < size)
				memset(model + ns, 0, size - ns);
			if (trunc_to(v, f, ns))
				errors++;
			size = ns;
		} else {
			uint64_t off = rnd() % MAXSZ;
			size_t len = (size_t)(rnd() % 20000);
			ssize_t got = ns_read(v, f, off, len, (char *)rd);
			size_t want = off >= size ? 0 : (size - off < len ? size - (size_t)off : len);
			if (got != (ssize_t)want || memcmp(rd, model + off, want))
				mismatches++;
		}
	}
	ssize_t got = ns_read(v, f, 0, MAXSZ, (char *)rd);
	CHECK(errors == 0, "1500 random writes, truncates and hole punches succeed");
	CHECK(mismatches == 0 && got == (ssize_t)size && !memcmp(rd, model, size),
	      "every read agrees with a plain byte array (%d mismatches)", mismatches);
	free(model);
	free(rd);
	free(data);
}

int main(void)
{
	char dir[256];
	struct mfs_volume *v = t_volume(dir, sizeof dir, INLINE, CHUNK);
	test_transitions(v);
	test_holes(v);
	test_fallocate(v);
	test_checksum(v);
	test_frames();
	test_differential(v);
	mfs_close(v);
	t_rmrf(dir);
	return t_done();
}
