/* SPDX-License-Identifier: Apache-2.0 */
/*
 * blockstore: a file's bytes, inside the caller's store transaction.
 *
 * Files up to the volume's inline threshold keep their bytes in one inline
 * record beside the inode; larger files are cut into fixed-size chunks keyed
 * by index. Every record carries a checksum of each 4 KiB block of its
 * payload, verified on each read of that block: a mismatch is -EIO and a
 * log line. A record's payload may be shorter
 * than the range it covers: the rest reads as zeros, and a chunk that was
 * never written (a hole) has no record at all.
 */
#ifndef METAFS_BLOCKSTORE_H
#define METAFS_BLOCKSTORE_H

#include <openssl/types.h>

#include "metadata.h"

/* SHA-256, fetched once: an implicit fetch on every digest costs more than
 * the digest of a small file. NULL when no provider has it. */
const EVP_MD *bs_sha256(void);

struct bs_config {
	uint32_t inline_threshold;
	uint32_t chunk_size;
};

/* Reads up to size bytes at off, clamped to the inode's size. Returns the count. */
ssize_t bs_read(struct store_txn *t, const struct bs_config *c, const struct inode_rec *in,
		uint64_t off, size_t size, char *buf);
/* Applies sorted, non-overlapping extents; updates in->size and in->flags. */
int bs_write(struct store_txn *t, const struct bs_config *c, struct inode_rec *in,
	     const struct ns_extent *ext, size_t n);
/* Sets the size, dropping or zero-extending; moves between inline and chunks. */
int bs_truncate(struct store_txn *t, const struct bs_config *c, struct inode_rec *in, uint64_t size);
/* Zeroes [off, off+len) within the file's size; whole chunks are dropped,
 * leaving holes. */
int bs_punch(struct store_txn *t, const struct bs_config *c, struct inode_rec *in,
	     uint64_t off, uint64_t len);
/* Deletes every data record of the inode. */
int bs_free(struct store_txn *t, const struct bs_config *c, const struct inode_rec *in);

/* Record framing, exposed for fsck and tests. */
int bs_frame(const void *payload, size_t len, unsigned char **out, size_t *out_len);
/* The bytes of header in front of a payload of payload_len bytes. */
size_t bs_header_len(size_t payload_len);
/* Where a framed record's payload starts, or -EIO if it is not a frame. */
int bs_payload_offset(const void *rec, size_t rec_len);
/* Verifies a framed record whole; on success points *payload into rec. */
int bs_unframe(const void *rec, size_t rec_len, const void **payload, size_t *len);
/* The same, verifying only the checksummed blocks that overlap [from, to)
 * of the payload (records of format 1 are verified whole). */
int bs_unframe_range(const void *rec, size_t rec_len, size_t from, size_t to, const void **payload,
		     size_t *len);

#endif
