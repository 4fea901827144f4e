/* SPDX-License-Identifier: Apache-2.0 */
#include "blockstore.h"
#include "common.h"

#include <errno.h>
#include <openssl/evp.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#define FRAME_FORMAT 1

static EVP_MD *sha256;
static pthread_once_t sha_once = PTHREAD_ONCE_INIT;

static void sha_init(void)
{
	/* fetched once: an implicit fetch on every digest costs more than the
	 * digest of a small file */
	sha256 = EVP_MD_fetch(NULL, "SHA256", NULL);
}

static int digest(const void *data, size_t len, unsigned char out[32])
{
	pthread_once(&sha_once, sha_init);
	if (!sha256 || !EVP_Digest(data, len, out, NULL, sha256, NULL))
		return -EIO;
	return 0;
}

int bs_frame(const void *payload, size_t len, unsigned char **out, size_t *out_len)
{
	unsigned char *p = malloc(BS_HEADER_LEN + len);
	if (!p)
		return -ENOMEM;
	p[0] = FRAME_FORMAT;
	int rc = digest(payload, len, p + 1);
	if (rc) {
		free(p);
		return rc;
	}
	if (len)
		memcpy(p + BS_HEADER_LEN, payload, len);
	*out = p;
	*out_len = BS_HEADER_LEN + len;
	return 0;
}

int bs_unframe(const void *rec, size_t rec_len, const void **payload, size_t *len)
{
	const unsigned char *p = rec;
	unsigned char md[32];
	if (rec_len < BS_HEADER_LEN || p[0] != FRAME_FORMAT)
		return -EIO;
	if (digest(p + BS_HEADER_LEN, rec_len - BS_HEADER_LEN, md) || memcmp(md, p + 1, 32) != 0)
		return -EIO;
	*payload = p + BS_HEADER_LEN;
	*len = rec_len - BS_HEADER_LEN;
	return 0;
}

static int put_framed(struct store_txn *t, uint64_t ino, bool chunk, uint64_t idx,
		      const void *data, size_t len)
{
	unsigned char *rec;
	size_t rec_len;
	int rc = bs_frame(data, len, &rec, &rec_len);
	if (rc)
		return rc;
	const struct store_ops *o = t->store->ops;
	rc = chunk ? o->chunk_put(t, ino, idx, rec, rec_len) : o->inline_put(t, ino, rec, rec_len);
	free(rec);
	return rc;
}

/* Loads a record's verified payload into a fresh buffer of cap bytes,
 * zero-filled past the payload. A missing record reads as all zeros. */
static int load(struct store_txn *t, uint64_t ino, bool chunk, uint64_t idx, size_t cap, char **out,
		size_t *payload_len)
{
	const struct store_ops *o = t->store->ops;
	void *rec = NULL;
	size_t rec_len = 0;
	int rc = chunk ? o->chunk_get(t, ino, idx, &rec, &rec_len) : o->inline_get(t, ino, &rec, &rec_len);
	if (rc && rc != -ENOENT)
		return rc;
	char *buf = calloc(1, cap ? cap : 1);
	if (!buf) {
		free(rec);
		return -ENOMEM;
	}
	*payload_len = 0;
	if (!rc) {
		const void *pl;
		size_t len;
		if (bs_unframe(rec, rec_len, &pl, &len)) {
			log_error("inode %llu: checksum mismatch in %s %llu; returning EIO",
				  (unsigned long long)ino, chunk ? "chunk" : "inline data",
				  (unsigned long long)idx);
			free(rec);
			free(buf);
			return -EIO;
		}
		if (len > cap)
			len = cap;
		memcpy(buf, pl, len);
		*payload_len = len;
	}
	free(rec);
	*out = buf;
	return 0;
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
	const struct store_ops *o = t->store->ops;
	if (!is_chunked(in)) {
		char *data;
		size_t plen;
		int rc = load(t, in->ino, false, 0, (size_t)in->size, &data, &plen);
		if (rc)
			return rc;
		memcpy(buf, data + off, size);
		free(data);
		return (ssize_t)size;
	}
	size_t done = 0;
	while (done < size) {
		uint64_t pos = off + done;
		uint64_t idx = pos / c->chunk_size;
		size_t in_chunk = (size_t)(pos % c->chunk_size);
		size_t n = c->chunk_size - in_chunk;
		if (n > size - done)
			n = size - done;
		void *rec = NULL;
		size_t rec_len;
		int rc = o->chunk_get(t, in->ino, idx, &rec, &rec_len);
		if (rc == -ENOENT) {
			memset(buf + done, 0, n);
		} else if (rc) {
			return rc;
		} else {
			const void *pl;
			size_t plen;
			if (bs_unframe(rec, rec_len, &pl, &plen)) {
				log_error("inode %llu: checksum mismatch in chunk %llu; returning EIO",
					  (unsigned long long)in->ino, (unsigned long long)idx);
				free(rec);
				return -EIO;
			}
			size_t have = plen > in_chunk ? plen - in_chunk : 0;
			if (have > n)
				have = n;
			memcpy(buf + done, (const char *)pl + in_chunk, have);
			memset(buf + done + have, 0, n - have);
			free(rec);
		}
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
					rc = put_framed(t, ino, true, cur_idx, cur, cur_len);
					free(cur);
					cur = NULL;
					if (rc)
						break;
				}
				cur_idx = idx;
				if (in_chunk == 0 && len == c->chunk_size) {
					/* a whole chunk: nothing to merge with */
					cur = calloc(1, c->chunk_size);
					cur_len = 0;
					if (!cur)
						rc = -ENOMEM;
				} else {
					rc = load(t, ino, true, idx, c->chunk_size, &cur, &cur_len);
				}
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
		rc = put_framed(t, ino, true, cur_idx, cur, cur_len);
	free(cur);
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
	if (!rc && (is_chunked(in) || S_ISREG(in->mode)))
		rc = drop_chunks_from(t, in->ino, 0);
	return rc;
}
