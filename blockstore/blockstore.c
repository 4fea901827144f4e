/* SPDX-License-Identifier: Apache-2.0 */
#include "blockstore.h"
#include "common.h"

#include <errno.h>
#include <openssl/evp.h>
#include <xxhash.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

/*
 * Record frames. Format 2, written now:
 *   [2][payload length, u32 le][XXH3-64 of each 4 KiB block of the payload, u64 le …][payload]
 * A read verifies only the blocks it returns, so a 4 KiB read of a 256 KiB
 * chunk hashes 4 KiB, not the whole chunk; XXH3 runs at memory speed where
 * SHA-256 held reads to 1.5 GB/s. The checksum guards against corruption on
 * disk, not against an attacker who can write the volume, so a
 * non-cryptographic hash is enough. Format 1, from earlier volumes, is
 * still read: [1][SHA-256 of the payload][payload], verified whole.
 */
#define FRAME_SHA256 1
#define FRAME_BLOCKS 2
#define CHECK_BLOCK 4096u
#define SHA256_HEADER 33

static EVP_MD *sha256;
static pthread_once_t sha_once = PTHREAD_ONCE_INIT;

static void sha_init(void)
{
	/* fetched once: an implicit fetch on every digest costs more than the
	 * digest of a small file */
	sha256 = EVP_MD_fetch(NULL, "SHA256", NULL);
}

const EVP_MD *bs_sha256(void)
{
	pthread_once(&sha_once, sha_init);
	return sha256;
}

static bool sha256_ok(const void *data, size_t len, const unsigned char want[32])
{
	unsigned char md[32];
	const EVP_MD *sha = bs_sha256();
	return sha && EVP_Digest(data, len, md, NULL, sha, NULL) && memcmp(md, want, 32) == 0;
}

static size_t blocks_of(size_t len)
{
	return (len + CHECK_BLOCK - 1) / CHECK_BLOCK;
}

size_t bs_header_len(size_t payload_len)
{
	return 5 + 8 * blocks_of(payload_len);
}

static uint64_t block_sum(const char *payload, size_t len, size_t b)
{
	size_t lo = b * CHECK_BLOCK;
	size_t n = len - lo < CHECK_BLOCK ? len - lo : CHECK_BLOCK;
	return XXH3_64bits(payload + lo, n);
}

/* Writes the header of a payload that sits right after it in memory. */
static void frame_header(unsigned char *rec, const char *payload, size_t len)
{
	rec[0] = FRAME_BLOCKS;
	put_le32(rec + 1, (uint32_t)len);
	for (size_t b = 0; b < blocks_of(len); b++)
		put_le64(rec + 5 + 8 * b, block_sum(payload, len, b));
}

int bs_frame(const void *payload, size_t len, unsigned char **out, size_t *out_len)
{
	if (len > UINT32_MAX)
		return -EFBIG;
	size_t h = bs_header_len(len);
	unsigned char *p = malloc(h + len);
	if (!p)
		return -ENOMEM;
	if (len)
		memcpy(p + h, payload, len);
	frame_header(p, (const char *)p + h, len);
	*out = p;
	*out_len = h + len;
	return 0;
}

int bs_payload_offset(const void *rec, size_t rec_len)
{
	const unsigned char *p = rec;
	if (rec_len >= SHA256_HEADER && p[0] == FRAME_SHA256)
		return SHA256_HEADER;
	if (rec_len < 5 || p[0] != FRAME_BLOCKS)
		return -EIO;
	size_t len = get_le32(p + 1);
	size_t h = bs_header_len(len);
	return rec_len == h + len ? (int)h : -EIO;
}

int bs_unframe_range(const void *rec, size_t rec_len, size_t from, size_t to, const void **payload, size_t *len)
{
	const unsigned char *p = rec;
	int h = bs_payload_offset(rec, rec_len);
	if (h < 0)
		return -EIO;
	const char *pl = (const char *)p + h;
	size_t plen = rec_len - (size_t)h;
	if (p[0] == FRAME_SHA256) {
		if (!sha256_ok(pl, plen, p + 1))
			return -EIO;
	} else {
		if (to > plen)
			to = plen;
		for (size_t b = from / CHECK_BLOCK; b * CHECK_BLOCK < to; b++)
			if (get_le64(p + 5 + 8 * b) != block_sum(pl, plen, b))
				return -EIO;
	}
	*payload = pl;
	*len = plen;
	return 0;
}

int bs_unframe(const void *rec, size_t rec_len, const void **payload, size_t *len)
{
	return bs_unframe_range(rec, rec_len, 0, SIZE_MAX, payload, len);
}

static int put_record(struct store_txn *t, uint64_t ino, bool chunk, uint64_t idx, const void *rec, size_t len)
{
	const struct store_ops *o = t->store->ops;
	return chunk ? o->chunk_put(t, ino, idx, rec, len) : o->inline_put(t, ino, rec, len);
}

static int put_framed(struct store_txn *t, uint64_t ino, bool chunk, uint64_t idx,
		      const void *data, size_t len)
{
	unsigned char *rec;
	size_t rec_len;
	int rc = bs_frame(data, len, &rec, &rec_len);
	if (rc)
		return rc;
	rc = put_record(t, ino, chunk, idx, rec, rec_len);
	free(rec);
	return rc;
}

/* A payload buffer with room for its frame header in front, so that a
 * chunk is framed where it was put together instead of copied once more. */
static char *payload_alloc(size_t cap)
{
	char *b = malloc(bs_header_len(cap) + cap);
	return b ? b + bs_header_len(cap) : NULL;
}

static void payload_free(char *p, size_t cap)
{
	if (p)
		free(p - bs_header_len(cap));
}

static int put_payload(struct store_txn *t, uint64_t ino, bool chunk, uint64_t idx, char *p, size_t len)
{
	size_t h = bs_header_len(len);
	unsigned char *rec = (unsigned char *)p - h;
	frame_header(rec, p, len);
	return put_record(t, ino, chunk, idx, rec, h + len);
}

static void report_mismatch(uint64_t ino, bool chunk, uint64_t idx)
{
	log_error("inode %llu: checksum mismatch in %s %llu; returning EIO", (unsigned long long)ino,
		  chunk ? "chunk" : "inline data", (unsigned long long)idx);
}

struct range_read {
	uint64_t ino, idx;
	bool chunk;
	size_t off, n;
	char *out;
	size_t got; /* bytes that came from the payload; zeros follow */
};

/* Verifies and copies [off, off + n) of a record's payload, zeros past it. */
static int read_range(void *arg, const void *rec, size_t rec_len)
{
	struct range_read *r = arg;
	const void *pl;
	size_t plen;
	if (bs_unframe_range(rec, rec_len, r->off, r->off + r->n, &pl, &plen)) {
		report_mismatch(r->ino, r->chunk, r->idx);
		return -EIO;
	}
	size_t have = plen > r->off ? plen - r->off : 0;
	if (have > r->n)
		have = r->n;
	memcpy(r->out, (const char *)pl + r->off, have);
	memset(r->out + have, 0, r->n - have);
	r->got = have;
	return 0;
}

/* read_range of one record, chunks read in place; a missing record reads
 * as all zeros. */
static int read_record(struct store_txn *t, struct range_read *r)
{
	const struct store_ops *o = t->store->ops;
	int rc;
	r->got = 0;
	if (r->chunk) {
		rc = o->chunk_view(t, r->ino, r->idx, read_range, r);
	} else {
		void *rec = NULL;
		size_t rec_len = 0;
		rc = o->inline_get(t, r->ino, &rec, &rec_len);
		if (!rc)
			rc = read_range(r, rec, rec_len);
		free(rec);
	}
	if (rc == -ENOENT) {
		memset(r->out, 0, r->n);
		rc = 0;
	}
	return rc;
}

/* Loads a record's verified payload into buf (cap bytes), zero-filled past
 * the payload. A missing record reads as all zeros. */
static int load_into(struct store_txn *t, uint64_t ino, bool chunk, uint64_t idx, char *buf, size_t cap,
		     size_t *payload_len)
{
	struct range_read r = { .ino = ino, .idx = idx, .chunk = chunk, .off = 0, .n = cap, .out = buf };
	int rc = read_record(t, &r);
	*payload_len = r.got;
	return rc;
}

/* load_into a fresh buffer of cap bytes */
static int load(struct store_txn *t, uint64_t ino, bool chunk, uint64_t idx, size_t cap, char **out,
		size_t *payload_len)
{
	char *buf = malloc(cap ? cap : 1);
	if (!buf)
		return -ENOMEM;
	int rc = load_into(t, ino, chunk, idx, buf, cap, payload_len);
	if (rc)
		free(buf);
	else
		*out = buf;
	return rc;
}

static bool is_chunked(const struct inode_rec *in)
{
	return in->flags & INODE_F_CHUNKED;
}

ssize_t bs_read(struct store_txn *t, const struct bs_config *c, const struct inode_rec *in,
		uint64_t off, size_t size, char *buf)
{
	if (!S_ISREG(in->mode) && !S_ISLNK(in->mode))
		return -EINVAL;
	if (off >= in->size)
		return 0;
	if (size > in->size - off)
		size = (size_t)(in->size - off);
	if (!is_chunked(in)) {
		struct range_read r = { .ino = in->ino, .off = (size_t)off, .n = size, .out = buf };
		int rc = read_record(t, &r);
		return rc ? rc : (ssize_t)size;
	}
	size_t done = 0;
	while (done < size) {
		uint64_t pos = off + done;
		uint64_t idx = pos / c->chunk_size;
		size_t in_chunk = (size_t)(pos % c->chunk_size);
		size_t n = c->chunk_size - in_chunk;
		if (n > size - done)
			n = size - done;
		struct range_read r = { .ino = in->ino, .idx = idx, .chunk = true, .off = in_chunk, .n = n,
					.out = buf + done };
		int rc = read_record(t, &r);
		if (rc)
			return rc;
		done += n;
	}
	return (ssize_t)done;
}

/* Writes extents into chunks of a chunked file whose new size is size. */
static int write_chunks(struct store_txn *t, const struct bs_config *c, uint64_t ino, uint64_t size,
			const struct ns_extent *ext, size_t n)
{
	char *cur = NULL;
	uint64_t cur_idx = 0;
	size_t cur_len = 0; /* bytes of cur that hold data */
	int rc = 0;
	for (size_t i = 0; i < n && !rc; i++) {
		size_t done = 0;
		while (done < ext[i].len && !rc) {
			uint64_t pos = ext[i].off + done;
			uint64_t idx = pos / c->chunk_size;
			size_t in_chunk = (size_t)(pos % c->chunk_size);
			size_t len = c->chunk_size - in_chunk;
			if (len > ext[i].len - done)
				len = ext[i].len - done;
			if (!cur || idx != cur_idx) {
				if (cur) {
					rc = put_payload(t, ino, true, cur_idx, cur, cur_len);
					if (rc)
						break;
				} else {
					cur = payload_alloc(c->chunk_size);
					if (!cur) {
						rc = -ENOMEM;
						break;
					}
				}
				cur_idx = idx;
				if (in_chunk == 0 && len == c->chunk_size)
					cur_len = 0; /* a whole chunk: nothing to merge with */
				else
					rc = load_into(t, ino, true, idx, cur, c->chunk_size, &cur_len);
				if (rc)
					break;
			}
			memcpy(cur + in_chunk, ext[i].data + done, len);
			if (in_chunk + len > cur_len)
				cur_len = in_chunk + len;
			done += len;
		}
	}
	if (cur && !rc)
		rc = put_payload(t, ino, true, cur_idx, cur, cur_len);
	payload_free(cur, c->chunk_size);
	(void)size;
	return rc;
}

/* Moves an inline file's bytes into chunks. */
static int to_chunks(struct store_txn *t, const struct bs_config *c, struct inode_rec *in)
{
	char *data;
	size_t plen;
	int rc = load(t, in->ino, false, 0, (size_t)in->size, &data, &plen);
	if (rc)
		return rc;
	struct ns_extent e = { .off = 0, .len = plen, .data = data };
	rc = plen ? write_chunks(t, c, in->ino, in->size, &e, 1) : 0;
	free(data);
	if (!rc)
		rc = t->store->ops->inline_del(t, in->ino);
	if (!rc)
		in->flags |= INODE_F_CHUNKED;
	return rc;
}

static int drop_chunks_from(struct store_txn *t, uint64_t ino, uint64_t from)
{
	struct u64_vec l = { 0 };
	int rc = t->store->ops->chunk_list(t, ino, from, u64_vec_collect, &l);
	for (size_t i = 0; i < l.n && !rc; i++)
		rc = t->store->ops->chunk_del(t, ino, l.v[i]);
	free(l.v);
	return rc;
}

/* Moves a chunked file of at most the inline threshold back inline. */
static int to_inline(struct store_txn *t, const struct bs_config *c, struct inode_rec *in)
{
	char *data = calloc(1, in->size ? (size_t)in->size : 1);
	if (!data)
		return -ENOMEM;
	ssize_t n = bs_read(t, c, in, 0, (size_t)in->size, data);
	int rc = n < 0 ? (int)n : 0;
	if (!rc)
		rc = drop_chunks_from(t, in->ino, 0);
	if (!rc)
		rc = put_framed(t, in->ino, false, 0, data, (size_t)in->size);
	if (!rc)
		in->flags &= ~INODE_F_CHUNKED;
	free(data);
	return rc;
}

int bs_write(struct store_txn *t, const struct bs_config *c, struct inode_rec *in,
	     const struct ns_extent *ext, size_t n)
{
	uint64_t size = in->size;
	for (size_t i = 0; i < n; i++)
		if (ext[i].off + ext[i].len > size)
			size = ext[i].off + ext[i].len;
	int rc;
	if (!is_chunked(in) && size <= c->inline_threshold) {
		char *data;
		size_t plen;
		rc = load(t, in->ino, false, 0, (size_t)size, &data, &plen);
		if (rc)
			return rc;
		for (size_t i = 0; i < n; i++)
			memcpy(data + ext[i].off, ext[i].data, ext[i].len);
		rc = put_framed(t, in->ino, false, 0, data, (size_t)size);
		free(data);
		if (!rc)
			in->size = size;
		return rc;
	}
	if (!is_chunked(in)) {
		rc = to_chunks(t, c, in);
		if (rc)
			return rc;
	}
	rc = write_chunks(t, c, in->ino, size, ext, n);
	if (!rc)
		in->size = size;
	return rc;
}

int bs_truncate(struct store_txn *t, const struct bs_config *c, struct inode_rec *in, uint64_t size)
{
	if (size == in->size)
		return 0;
	int rc = 0;
	if (!is_chunked(in)) {
		if (size > c->inline_threshold) {
			rc = to_chunks(t, c, in);
			if (!rc)
				in->size = size;
			return rc;
		}
		if (size < in->size) {
			char *data;
			size_t plen;
			rc = load(t, in->ino, false, 0, (size_t)size, &data, &plen);
			if (rc)
				return rc;
			rc = put_framed(t, in->ino, false, 0, data, plen);
			free(data);
		}
		if (!rc)
			in->size = size;
		return rc;
	}
	if (size < in->size) {
		uint64_t keep = (size + c->chunk_size - 1) / c->chunk_size;
		rc = drop_chunks_from(t, in->ino, keep);
		size_t tail = (size_t)(size % c->chunk_size);
		if (!rc && tail) {
			/* the last kept chunk must not hold bytes past the new end,
			 * or growing the file again would bring them back */
			char *data;
			size_t plen;
			rc = load(t, in->ino, true, keep - 1, tail, &data, &plen);
			if (!rc) {
				/* plen == tail: the payload reached at least the new end */
				if (plen == tail)
					rc = put_framed(t, in->ino, true, keep - 1, data, plen);
				free(data);
			}
		}
		if (rc)
			return rc;
	}
	in->size = size;
	if (size <= c->inline_threshold)
		rc = to_inline(t, c, in);
	return rc;
}

int bs_punch(struct store_txn *t, const struct bs_config *c, struct inode_rec *in,
	     uint64_t off, uint64_t len)
{
	if (off >= in->size)
		return 0;
	if (len > in->size - off)
		len = in->size - off;
	int rc;
	if (!is_chunked(in)) {
		char *data;
		size_t plen;
		rc = load(t, in->ino, false, 0, (size_t)in->size, &data, &plen);
		if (rc)
			return rc;
		if (off < plen) {
			size_t n = plen - off < len ? plen - (size_t)off : (size_t)len;
			memset(data + off, 0, n);
			rc = put_framed(t, in->ino, false, 0, data, plen);
		}
		free(data);
		return rc;
	}
	uint64_t end = off + len;
	for (uint64_t idx = off / c->chunk_size; idx * c->chunk_size < end; idx++) {
		uint64_t lo = idx * c->chunk_size, hi = lo + c->chunk_size;
		if (off <= lo && end >= hi) {
			rc = t->store->ops->chunk_del(t, in->ino, idx);
		} else {
			char *data;
			size_t plen;
			rc = load(t, in->ino, true, idx, c->chunk_size, &data, &plen);
			if (rc)
				return rc;
			size_t a = off > lo ? (size_t)(off - lo) : 0;
			size_t b = end < hi ? (size_t)(end - lo) : c->chunk_size;
			if (a < plen) {
				memset(data + a, 0, (b < plen ? b : plen) - a);
				rc = put_framed(t, in->ino, true, idx, data, plen);
			}
			free(data);
		}
		if (rc)
			return rc;
	}
	return 0;
}

int bs_free(struct store_txn *t, const struct bs_config *c, const struct inode_rec *in)
{
	int rc = t->store->ops->inline_del(t, in->ino);
	/* only a chunked file has chunks (moving back inline drops them in
	 * the same transaction); the scan is skipped for the many small files,
	 * whose deletion it made a third dearer */
	if (!rc && is_chunked(in))
		rc = drop_chunks_from(t, in->ino, 0);
	return rc;
}
