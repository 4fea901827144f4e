/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The embedded store: a RocksDB TransactionDB (pessimistic locking).
 *
 * Key layout, integers big-endian so that prefix scans come out in order:
 *   column family "default" (hot metadata)
 *     I|ino               inode
 *     D|parent|name       directory entry by name   -> ino, type, cookie
 *     E|parent|cookie     directory entry by cookie -> ino, type, name
 *     R|ino|parent|name   the names of an inode (reverse of D)
 *     X|ino|name          extended attribute
 *     O|ino               orphan (no name left, still in use)
 *     V|...               provenance records (their keys are provenance.c's)
 *     M|...               superblock, inode-number reservation, named locks
 *   column family "data"  F|ino inline bytes, C|ino|index chunks
 *   column family "log"   L|seq changelog records
 *
 * A read-only view (STORE_OPEN_READONLY) opens the directory as a RocksDB
 * secondary instance, so `metafs changelog` and `stats` work beside a
 * mounted daemon, which holds the volume's lock.
 */
#include "metadata.h"
#include "common.h"

#include <errno.h>
#include <ftw.h>
#include <pthread.h>
#include <rocksdb/c.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

enum { CF_META, CF_DATA, CF_LOG, CF_COUNT };
static const char *const cf_names[CF_COUNT] = { "default", "data", "log" };

/* Inode numbers are reserved in blocks so that allocation rarely writes. */
#define INO_RESERVE 4096
/* Lock waits are short: a waiter that times out retries the whole
 * operation, and deadlocks are detected at once. */
#define LOCK_TIMEOUT_MS 500

struct rocks_store {
	struct store base;
	char *dir;
	char *secondary_dir;
	rocksdb_options_t *opts;
	rocksdb_options_t *cf_opts[CF_COUNT];
	rocksdb_cache_t *cache;
	rocksdb_block_based_table_options_t *table_opts;
	rocksdb_transactiondb_options_t *tdb_opts;
	rocksdb_transactiondb_t *tdb; /* writer */
	rocksdb_t *sdb; /* read-only secondary */
	rocksdb_column_family_handle_t *cf[CF_COUNT];
	rocksdb_writeoptions_t *wopts;
	rocksdb_readoptions_t *ropts;
	rocksdb_readoptions_t *data_ropts;
	rocksdb_transaction_options_t *topts;

	/* Commit order = changelog order: sequence numbers are handed out and
	 * the transaction committed under one mutex, so they are gap-free. */
	pthread_mutex_t commit_lock;
	uint64_t next_seq;

	pthread_mutex_t ino_lock;
	uint64_t next_ino, ino_hi;

	/* Finished transaction objects, handed to the next begin: creating
	 * one costs more than a small operation itself. */
	pthread_mutex_t pool_lock;
	rocksdb_transaction_t *pool[32];
	int npool;
};

struct pending_rec {
	unsigned char *data;
	size_t len;
};

struct rocks_txn {
	struct store_txn base;
	rocksdb_transaction_t *txn; /* NULL in a read-only view */
	struct pending_rec *log;
	size_t nlog, caplog;
};

static struct rocks_store *RS(struct store *s)
{
	return (struct rocks_store *)s;
}

static struct rocks_txn *RT(struct store_txn *t)
{
	return (struct rocks_txn *)t;
}

/* Maps a RocksDB status string to an errno, and frees it. */
static int map_err(char *err, const char *what)
{
	if (!err)
		return 0;
	int rc;
	if (!strncmp(err, "Resource busy", 13) || !strncmp(err, "Operation timed out", 19) ||
	    !strncmp(err, "Operation failed. Try again", 27) || strstr(err, "Deadlock"))
		rc = MFS_ERETRY;
	else if (strstr(err, "No space left"))
		rc = -ENOSPC;
	else if (strstr(err, "While lock file") || strstr(err, "lock hold by current process"))
		rc = -EBUSY;
	else if (strstr(err, "does not exist"))
		rc = -ENOENT;
	else if (strstr(err, "Permission denied"))
		rc = -EACCES;
	else if (strstr(err, "Read-only file system"))
		rc = -EROFS;
	else
		rc = -EIO;
	if (rc == -EIO || rc == -ENOSPC)
		log_error("rocksdb %s: %s", what, err);
	free(err);
	return rc;
}

/* ---------------------------------------------------------------- keys */

#define KEY_MAX (1 + 8 + 8 + 256)

static size_t key_ino(unsigned char *k, char tag, uint64_t ino)
{
	k[0] = (unsigned char)tag;
	put_be64(k + 1, ino);
	return 9;
}

static size_t key_ino_name(unsigned char *k, char tag, uint64_t ino, const char *name, size_t len)
{
	size_t n = key_ino(k, tag, ino);
	if (len > 255)
		len = 255;
	memcpy(k + n, name, len);
	return n + len;
}

static size_t key_ino_u64(unsigned char *k, char tag, uint64_t ino, uint64_t x)
{
	size_t n = key_ino(k, tag, ino);
	put_be64(k + n, x);
	return n + 8;
}

/* ---------------------------------------------------------------- inode encoding */

#define INODE_FORMAT 1
#define INODE_LEN (1 + 4 * 5 + 8 * 14)

static void enc_ts(unsigned char **q, struct timespec ts)
{
	put_le64(*q, (uint64_t)ts.tv_sec);
	put_le64(*q + 8, (uint64_t)ts.tv_nsec);
	*q += 16;
}

static struct timespec dec_ts(const unsigned char **q)
{
	struct timespec ts = { .tv_sec = (time_t)get_le64(*q), .tv_nsec = (long)get_le64(*q + 8) };
	*q += 16;
	return ts;
}

static void inode_encode(const struct inode_rec *in, unsigned char *p)
{
	unsigned char *q = p;
	*q++ = INODE_FORMAT;
	uint32_t u32s[] = { in->mode, in->nlink, in->uid, in->gid, in->flags };
	for (size_t i = 0; i < MFS_ARRAY_LEN(u32s); i++, q += 4)
		put_le32(q, u32s[i]);
	uint64_t u64s[] = { in->rdev, in->size, in->version, in->parent, in->next_cookie, in->ino };
	for (size_t i = 0; i < MFS_ARRAY_LEN(u64s); i++, q += 8)
		put_le64(q, u64s[i]);
	enc_ts(&q, in->atime);
	enc_ts(&q, in->mtime);
	enc_ts(&q, in->ctime);
	enc_ts(&q, in->btime);
}

static int inode_decode(const unsigned char *p, size_t len, struct inode_rec *in)
{
	if (len != INODE_LEN || p[0] != INODE_FORMAT)
		return -EIO;
	const unsigned char *q = p + 1;
	in->mode = get_le32(q);
	in->nlink = get_le32(q + 4);
	in->uid = get_le32(q + 8);
	in->gid = get_le32(q + 12);
	in->flags = get_le32(q + 16);
	q += 20;
	in->rdev = get_le64(q);
	in->size = get_le64(q + 8);
	in->version = get_le64(q + 16);
	in->parent = get_le64(q + 24);
	in->next_cookie = get_le64(q + 32);
	in->ino = get_le64(q + 40);
	q += 48;
	in->atime = dec_ts(&q);
	in->mtime = dec_ts(&q);
	in->ctime = dec_ts(&q);
	in->btime = dec_ts(&q);
	return 0;
}

/* ---------------------------------------------------------------- raw access */

/* Looks a key up and hands the value, in place, to fn. */
static int kv_view(struct store_txn *t, int cf, const unsigned char *k, size_t klen, bool lock,
		   int (*fn)(void *arg, const void *v, size_t len), void *arg)
{
	struct rocks_store *s = RS(t->store);
	struct rocks_txn *rt = RT(t);
	/* file data carries its own block checksums, verified by the block
	 * store on the bytes it returns: RocksDB's CRC over the whole value
	 * would only repeat that, at software speed in this build */
	const rocksdb_readoptions_t *ro = cf == CF_DATA ? s->data_ropts : s->ropts;
	char *err = NULL;
	/* pinned reads: the C API's plain Get copies a value twice, which
	 * for a 256 KiB chunk costs more than the lookup */
	rocksdb_pinnableslice_t *ps;
	if (rt->txn && lock)
		ps = rocksdb_transaction_get_pinned_for_update_cf(rt->txn, ro, s->cf[cf], (const char *)k, klen, 1,
								  &err);
	else if (rt->txn)
		ps = rocksdb_transaction_get_pinned_cf(rt->txn, ro, s->cf[cf], (const char *)k, klen, &err);
	else if (s->tdb)
		ps = rocksdb_transactiondb_get_pinned_cf(s->tdb, ro, s->cf[cf], (const char *)k, klen, &err);
	else
		ps = rocksdb_get_pinned_cf(s->sdb, ro, s->cf[cf], (const char *)k, klen, &err);
	if (err)
		return map_err(err, "get");
	if (!ps)
		return -ENOENT;
	size_t n;
	const char *p = rocksdb_pinnableslice_value(ps, &n);
	int rc = fn(arg, p, n);
	rocksdb_pinnableslice_destroy(ps);
	return rc;
}

struct copy_out {
	char **val;
	size_t *len;
};

static int copy_value(void *arg, const void *v, size_t n)
{
	struct copy_out *o = arg;
	char *c = malloc(n ? n : 1);
	if (!c)
		return -ENOMEM;
	memcpy(c, v, n);
	*o->val = c;
	*o->len = n;
	return 0;
}

static int kv_get(struct store_txn *t, int cf, const unsigned char *k, size_t klen, bool lock,
		  char **val, size_t *vlen)
{
	return kv_view(t, cf, k, klen, lock, copy_value, &(struct copy_out){ val, vlen });
}

static int kv_put(struct store_txn *t, int cf, const unsigned char *k, size_t klen,
		  const void *val, size_t vlen)
{
	struct rocks_txn *rt = RT(t);
	if (!rt->txn)
		return -EROFS;
	char *err = NULL;
	rocksdb_transaction_put_cf(rt->txn, RS(t->store)->cf[cf], (const char *)k, klen, val, vlen, &err);
	return map_err(err, "put");
}

static int kv_del(struct store_txn *t, int cf, const unsigned char *k, size_t klen)
{
	struct rocks_txn *rt = RT(t);
	if (!rt->txn)
		return -EROFS;
	char *err = NULL;
	rocksdb_transaction_delete_cf(rt->txn, RS(t->store)->cf[cf], (const char *)k, klen, &err);
	return map_err(err, "delete");
}

typedef int (*scan_cb)(void *arg, const unsigned char *k, size_t klen, const unsigned char *v, size_t vlen);

/* An iterator over cf: t's view with its own writes, or the store's. */
static rocksdb_iterator_t *kv_iter(struct rocks_store *s, struct store_txn *t, int cf, rocksdb_readoptions_t *ro)
{
	if (t && RT(t)->txn)
		return rocksdb_transaction_create_iterator_cf(RT(t)->txn, ro, s->cf[cf]);
	if (s->tdb)
		return rocksdb_transactiondb_create_iterator_cf(s->tdb, ro, s->cf[cf]);
	return rocksdb_create_iterator_cf(s->sdb, ro, s->cf[cf]);
}

/* Frees an iterator and its options; rc, or the iterator's error. */
static int kv_iter_end(rocksdb_iterator_t *it, rocksdb_readoptions_t *ro, int rc)
{
	char *err = NULL;
	rocksdb_iter_get_error(it, &err);
	if (err && rc >= 0)
		rc = map_err(err, "scan");
	else
		free(err);
	rocksdb_iter_destroy(it);
	rocksdb_readoptions_destroy(ro);
	return rc < 0 ? rc : 0;
}

/* Visits keys in [lo, hi) in order. t may be NULL for a store-level scan. */
static int kv_scan(struct rocks_store *s, struct store_txn *t, int cf, const unsigned char *lo,
		   size_t lolen, const unsigned char *hi, size_t hilen, scan_cb cb, void *arg)
{
	rocksdb_readoptions_t *ro = rocksdb_readoptions_create();
	rocksdb_readoptions_set_iterate_upper_bound(ro, (const char *)hi, hilen);
	rocksdb_iterator_t *it = kv_iter(s, t, cf, ro);
	int rc = 0;
	for (rocksdb_iter_seek(it, (const char *)lo, lolen); rocksdb_iter_valid(it); rocksdb_iter_next(it)) {
		size_t klen, vlen;
		const char *k = rocksdb_iter_key(it, &klen);
		const char *v = rocksdb_iter_value(it, &vlen);
		rc = cb(arg, (const unsigned char *)k, klen, (const unsigned char *)v, vlen);
		if (rc)
			break;
	}
	return kv_iter_end(it, ro, rc);
}

static int keycmp(const unsigned char *a, size_t alen, const unsigned char *b, size_t blen)
{
	int c = memcmp(a, b, alen < blen ? alen : blen);
	return c ? c : alen < blen ? -1 : alen > blen;
}

/* The last key in [lo, hi), if any. t may be NULL for a store-level read. */
static int kv_last(struct rocks_store *s, struct store_txn *t, int cf, const unsigned char *lo, size_t lolen,
		   const unsigned char *hi, size_t hilen, scan_cb cb, void *arg)
{
	rocksdb_readoptions_t *ro = rocksdb_readoptions_create();
	rocksdb_iterator_t *it = kv_iter(s, t, cf, ro);
	int rc = 0;
	/* the last key at or before hi, and before it if it is hi */
	rocksdb_iter_seek_for_prev(it, (const char *)hi, hilen);
	size_t klen = 0;
	const char *k = rocksdb_iter_valid(it) ? rocksdb_iter_key(it, &klen) : NULL;
	if (k && klen == hilen && !memcmp(k, hi, hilen)) {
		rocksdb_iter_prev(it);
		k = rocksdb_iter_valid(it) ? rocksdb_iter_key(it, &klen) : NULL;
	}
	if (k && keycmp((const unsigned char *)k, klen, lo, lolen) >= 0) {
		size_t vlen;
		const char *v = rocksdb_iter_value(it, &vlen);
		rc = cb(arg, (const unsigned char *)k, klen, (const unsigned char *)v, vlen);
	}
	return kv_iter_end(it, ro, rc);
}

/* ---------------------------------------------------------------- transactions */

static int r_begin(struct store *st, struct store_txn **out)
{
	struct rocks_store *s = RS(st);
	struct rocks_txn *t = calloc(1, sizeof *t);
	if (!t)
		return -ENOMEM;
	t->base.store = st;
	if (s->tdb) {
		rocksdb_transaction_t *old = NULL;
		pthread_mutex_lock(&s->pool_lock);
		if (s->npool)
			old = s->pool[--s->npool];
		pthread_mutex_unlock(&s->pool_lock);
		t->txn = rocksdb_transaction_begin(s->tdb, s->wopts, s->topts, old);
		if (!t->txn) {
			free(t);
			return -ENOMEM;
		}
	}
	*out = &t->base;
	return 0;
}

/* Reads without locks or a write batch: plain reads of committed data. */
static int r_begin_read(struct store *st, struct store_txn **out)
{
	struct rocks_txn *t = calloc(1, sizeof *t);
	if (!t)
		return -ENOMEM;
	t->base.store = st;
	*out = &t->base;
	return 0;
}

static void txn_free(struct rocks_txn *t)
{
	struct rocks_store *s = RS(t->base.store);
	for (size_t i = 0; i < t->nlog; i++)
		free(t->log[i].data);
	free(t->log);
	if (t->txn) {
		pthread_mutex_lock(&s->pool_lock);
		if (s->npool < (int)MFS_ARRAY_LEN(s->pool)) {
			s->pool[s->npool++] = t->txn;
			t->txn = NULL;
		}
		pthread_mutex_unlock(&s->pool_lock);
		if (t->txn)
			rocksdb_transaction_destroy(t->txn);
	}
	free(t);
}

static void r_abort(struct store_txn *tt)
{
	struct rocks_txn *t = RT(tt);
	if (t->txn) {
		char *err = NULL;
		rocksdb_transaction_rollback(t->txn, &err);
		free(err);
	}
	txn_free(t);
}

static int r_commit(struct store_txn *tt)
{
	struct rocks_txn *t = RT(tt);
	struct rocks_store *s = RS(tt->store);
	if (!t->txn) {
		txn_free(t);
		return 0;
	}
	char *err = NULL;
	int rc = 0;
	bool locked = false;
	if (t->nlog) {
		pthread_mutex_lock(&s->commit_lock);
		locked = true;
		for (size_t i = 0; i < t->nlog && !rc; i++) {
			unsigned char k[9];
			key_ino(k, 'L', s->next_seq + i);
			rocksdb_transaction_put_cf(t->txn, s->cf[CF_LOG], (const char *)k, sizeof k,
						   (const char *)t->log[i].data, t->log[i].len, &err);
			rc = map_err(err, "changelog append");
			err = NULL;
		}
	}
	if (!rc) {
		rocksdb_transaction_commit(t->txn, &err);
		rc = map_err(err, "commit");
		err = NULL;
	}
	if (!rc && locked)
		s->next_seq += t->nlog;
	if (locked)
		pthread_mutex_unlock(&s->commit_lock);
	if (rc) {
		rocksdb_transaction_rollback(t->txn, &err);
		free(err);
	}
	txn_free(t);
	return rc;
}

static int r_lock_global(struct store_txn *t, const char *what)
{
	unsigned char k[64];
	size_t n = (size_t)snprintf((char *)k, sizeof k, "M|lock|%s", what);
	char *v = NULL;
	size_t vlen;
	int rc = kv_get(t, CF_META, k, n, true, &v, &vlen);
	free(v);
	if (rc == -ENOENT)
		return kv_put(t, CF_META, k, n, "", 0);
	return rc;
}

/* ---------------------------------------------------------------- inodes */

static int r_inode_get(struct store_txn *t, uint64_t ino, struct inode_rec *out, bool lock)
{
	unsigned char k[9];
	char *v;
	size_t vlen;
	int rc = kv_get(t, CF_META, k, key_ino(k, 'I', ino), lock, &v, &vlen);
	if (rc)
		return rc;
	rc = inode_decode((unsigned char *)v, vlen, out);
	free(v);
	if (rc)
		log_error("inode %llu: undecodable record", (unsigned long long)ino);
	return rc;
}

static int r_inode_put(struct store_txn *t, const struct inode_rec *in)
{
	unsigned char k[9], v[INODE_LEN];
	inode_encode(in, v);
	return kv_put(t, CF_META, k, key_ino(k, 'I', in->ino), v, sizeof v);
}

static int r_inode_del(struct store_txn *t, uint64_t ino)
{
	unsigned char k[9];
	return kv_del(t, CF_META, k, key_ino(k, 'I', ino));
}

struct ino_scan {
	ino_list_cb cb;
	void *arg;
};

static int ino_scan_cb(void *arg, const unsigned char *k, size_t klen, const unsigned char *v, size_t vlen)
{
	struct ino_scan *a = arg;
	if (klen != 9)
		return 0;
	return a->cb(a->arg, get_be64(k + 1));
}

struct inode_scan {
	inode_scan_cb cb;
	void *arg;
};

static int inode_scan_kv(void *arg, const unsigned char *k, size_t klen, const unsigned char *v, size_t vlen)
{
	struct inode_scan *a = arg;
	if (klen != 9)
		return a->cb(a->arg, 0, NULL);
	struct inode_rec in;
	bool ok = inode_decode(v, vlen, &in) == 0;
	return a->cb(a->arg, get_be64(k + 1), ok ? &in : NULL);
}

static int r_inode_scan(struct store *st, inode_scan_cb cb, void *arg)
{
	unsigned char lo[1] = { 'I' }, hi[1] = { 'J' };
	struct inode_scan a = { cb, arg };
	return kv_scan(RS(st), NULL, CF_META, lo, 1, hi, 1, inode_scan_kv, &a);
}

/* ---------------------------------------------------------------- directory entries */

static int r_dirent_get(struct store_txn *t, uint64_t parent, const char *name, size_t len,
			struct dirent_rec *out)
{
	unsigned char k[KEY_MAX];
	char *v;
	size_t vlen;
	int rc = kv_get(t, CF_META, k, key_ino_name(k, 'D', parent, name, len), false, &v, &vlen);
	if (rc)
		return rc;
	if (vlen != 20) {
		free(v);
		return -EIO;
	}
	out->ino = get_be64((unsigned char *)v);
	out->type = get_le32((unsigned char *)v + 8);
	out->cookie = get_be64((unsigned char *)v + 12);
	free(v);
	return 0;
}

static size_t key_rname(unsigned char *k, uint64_t ino, uint64_t parent, const char *name, size_t len)
{
	size_t n = key_ino_u64(k, 'R', ino, parent);
	if (len > 255)
		len = 255;
	memcpy(k + n, name, len);
	return n + len;
}

static int r_dirent_put(struct store_txn *t, uint64_t parent, const char *name, size_t len,
			const struct dirent_rec *d)
{
	unsigned char k[KEY_MAX + 8], v[20 + 256];
	put_be64(v, d->ino);
	put_le32(v + 8, d->type);
	put_be64(v + 12, d->cookie);
	int rc = kv_put(t, CF_META, k, key_ino_name(k, 'D', parent, name, len), v, 20);
	if (rc)
		return rc;
	if ((rc = kv_put(t, CF_META, k, key_rname(k, d->ino, parent, name, len), "", 0)))
		return rc;
	/* the by-cookie copy carries the name instead of the cookie */
	memcpy(v + 12, name, len);
	return kv_put(t, CF_META, k, key_ino_u64(k, 'E', parent, d->cookie), v, 12 + len);
}

static int r_dirent_del(struct store_txn *t, uint64_t parent, const char *name, size_t len,
			const struct dirent_rec *d)
{
	unsigned char k[KEY_MAX + 8];
	int rc = kv_del(t, CF_META, k, key_ino_name(k, 'D', parent, name, len));
	if (!rc)
		rc = kv_del(t, CF_META, k, key_rname(k, d->ino, parent, name, len));
	if (!rc)
		rc = kv_del(t, CF_META, k, key_ino_u64(k, 'E', parent, d->cookie));
	return rc;
}

struct rname_scan {
	name_cb cb;
	void *arg;
};

static int rname_scan_kv(void *arg, const unsigned char *k, size_t klen, const unsigned char *v, size_t vlen)
{
	struct rname_scan *a = arg;
	if (klen < 18)
		return -EIO;
	return a->cb(a->arg, get_be64(k + 9), (const char *)k + 17, klen - 17);
}

static int r_names_of(struct store_txn *t, uint64_t ino, name_cb cb, void *arg)
{
	unsigned char lo[9], hi[9];
	key_ino(lo, 'R', ino);
	key_ino(hi, 'R', ino + 1);
	struct rname_scan a = { cb, arg };
	return kv_scan(RS(t->store), t, CF_META, lo, sizeof lo, hi, sizeof hi, rname_scan_kv, &a);
}

struct dir_scan {
	dir_list_cb cb;
	void *arg;
};

static int dir_scan_cb(void *arg, const unsigned char *k, size_t klen, const unsigned char *v, size_t vlen)
{
	struct dir_scan *a = arg;
	if (klen != 17 || vlen < 12)
		return -EIO;
	struct dirent_rec d = { .ino = get_be64(v), .type = get_le32(v + 8), .cookie = get_be64(k + 9) };
	return a->cb(a->arg, (const char *)v + 12, vlen - 12, &d);
}

static int r_dir_list(struct store_txn *t, uint64_t parent, uint64_t from, dir_list_cb cb, void *arg)
{
	unsigned char lo[17], hi[9];
	key_ino_u64(lo, 'E', parent, from);
	key_ino(hi, 'E', parent + 1);
	struct dir_scan a = { cb, arg };
	return kv_scan(RS(t->store), t, CF_META, lo, sizeof lo, hi, sizeof hi, dir_scan_cb, &a);
}

struct dirent_scan {
	dirent_scan_cb cb;
	void *arg;
};

static int dirent_scan_kv(void *arg, const unsigned char *k, size_t klen, const unsigned char *v, size_t vlen)
{
	struct dirent_scan *a = arg;
	if (klen < 9 || vlen != 20)
		return a->cb(a->arg, klen >= 9 ? get_be64(k + 1) : 0, "", 0, NULL);
	struct dirent_rec d = { .ino = get_be64(v), .type = get_le32(v + 8), .cookie = get_be64(v + 12) };
	return a->cb(a->arg, get_be64(k + 1), (const char *)k + 9, klen - 9, &d);
}

static int r_dirent_scan(struct store *st, dirent_scan_cb cb, void *arg)
{
	unsigned char lo[1] = { 'D' }, hi[1] = { 'E' };
	struct dirent_scan a = { cb, arg };
	return kv_scan(RS(st), NULL, CF_META, lo, 1, hi, 1, dirent_scan_kv, &a);
}

/* The by-cookie index must hold exactly one copy of every entry. */
struct index_check {
	struct rocks_store *s;
	struct store_txn *t;
	bool repair;
	store_issue_cb cb;
	void *arg;
	int rc;
};

static int check_e_from_d(void *arg, const unsigned char *k, size_t klen, const unsigned char *v, size_t vlen)
{
	struct index_check *c = arg;
	if (klen < 10 || vlen != 20)
		return 0; /* undecodable entries are fsck's to report */
	uint64_t parent = get_be64(k + 1), ino = get_be64(v), cookie = get_be64(v + 12);
	unsigned char ek[17];
	char *ev = NULL;
	size_t evlen;
	int rc = kv_get(c->t, CF_META, ek, key_ino_u64(ek, 'E', parent, cookie), false, &ev, &evlen);
	bool ok = rc == 0 && evlen == 12 + (klen - 9) && get_be64((unsigned char *)ev) == ino &&
		  !memcmp(ev + 12, k + 9, klen - 9);
	free(ev);
	if (rc && rc != -ENOENT)
		return rc;
	if (!ok) {
		if (c->repair) {
			struct dirent_rec d = { ino, get_le32(v + 8), cookie };
			rc = r_dirent_put(c->t, parent, (const char *)k + 9, klen - 9, &d);
			if (rc)
				return rc;
		}
		c->cb(c->arg, ino, "directory entry missing from the listing index", c->repair);
	}
	unsigned char rk[KEY_MAX + 8];
	size_t rklen = key_rname(rk, ino, parent, (const char *)k + 9, klen - 9);
	ev = NULL;
	rc = kv_get(c->t, CF_META, rk, rklen, false, &ev, &evlen);
	free(ev);
	if (rc == -ENOENT) {
		if (c->repair && (rc = kv_put(c->t, CF_META, rk, rklen, "", 0)))
			return rc;
		c->cb(c->arg, ino, "directory entry missing from the names index", c->repair);
	} else if (rc) {
		return rc;
	}
	return 0;
}

static int check_d_from_r(void *arg, const unsigned char *k, size_t klen, const unsigned char *v, size_t vlen)
{
	struct index_check *c = arg;
	uint64_t ino = klen >= 9 ? get_be64(k + 1) : 0;
	bool ok = false;
	if (klen >= 18) {
		struct dirent_rec d;
		int rc = r_dirent_get(c->t, get_be64(k + 9), (const char *)k + 17, klen - 17, &d);
		if (rc && rc != -ENOENT)
			return rc;
		ok = rc == 0 && d.ino == ino;
	}
	if (!ok) {
		if (c->repair) {
			int rc = kv_del(c->t, CF_META, k, klen);
			if (rc)
				return rc;
		}
		c->cb(c->arg, ino, "stale entry in the names index", c->repair);
	}
	return 0;
}

static int check_d_from_e(void *arg, const unsigned char *k, size_t klen, const unsigned char *v, size_t vlen)
{
	struct index_check *c = arg;
	bool ok = false;
	uint64_t ino = vlen >= 12 ? get_be64(v) : 0;
	if (klen == 17 && vlen >= 12) {
		struct dirent_rec d;
		int rc = r_dirent_get(c->t, get_be64(k + 1), (const char *)v + 12, vlen - 12, &d);
		if (rc && rc != -ENOENT)
			return rc;
		ok = rc == 0 && d.ino == ino && d.cookie == get_be64(k + 9);
	}
	if (!ok) {
		if (c->repair) {
			int rc = kv_del(c->t, CF_META, k, klen);
			if (rc)
				return rc;
		}
		c->cb(c->arg, ino, "stale entry in the listing index", c->repair);
	}
	return 0;
}

static int r_check_indexes(struct store *st, bool repair, store_issue_cb cb, void *arg)
{
	struct rocks_store *s = RS(st);
	struct store_txn *t;
	int rc = r_begin(st, &t);
	if (rc)
		return rc;
	struct index_check c = { s, t, repair && s->tdb, cb, arg, 0 };
	unsigned char dlo[1] = { 'D' }, dhi[1] = { 'E' }, elo[1] = { 'E' }, ehi[1] = { 'F' };
	unsigned char rlo[1] = { 'R' }, rhi[1] = { 'S' };
	rc = kv_scan(s, NULL, CF_META, elo, 1, ehi, 1, check_d_from_e, &c);
	if (!rc)
		rc = kv_scan(s, NULL, CF_META, rlo, 1, rhi, 1, check_d_from_r, &c);
	if (!rc)
		rc = kv_scan(s, NULL, CF_META, dlo, 1, dhi, 1, check_e_from_d, &c);
	if (rc) {
		r_abort(t);
		return rc;
	}
	return r_commit(t);
}

/* ---------------------------------------------------------------- xattrs */

static int r_xattr_get(struct store_txn *t, uint64_t ino, const char *name, void **val, size_t *len)
{
	unsigned char k[KEY_MAX];
	char *v;
	int rc = kv_get(t, CF_META, k, key_ino_name(k, 'X', ino, name, strlen(name)), false, &v, len);
	if (rc)
		return rc;
	*val = v;
	return 0;
}

static int r_xattr_put(struct store_txn *t, uint64_t ino, const char *name, const void *val, size_t len)
{
	unsigned char k[KEY_MAX];
	return kv_put(t, CF_META, k, key_ino_name(k, 'X', ino, name, strlen(name)), val, len);
}

static int r_xattr_del(struct store_txn *t, uint64_t ino, const char *name)
{
	unsigned char k[KEY_MAX];
	return kv_del(t, CF_META, k, key_ino_name(k, 'X', ino, name, strlen(name)));
}

struct xattr_scan {
	xattr_list_cb cb;
	void *arg;
};

static int xattr_list_kv(void *arg, const unsigned char *k, size_t klen, const unsigned char *v, size_t vlen)
{
	struct xattr_scan *a = arg;
	return a->cb(a->arg, (const char *)k + 9, klen - 9);
}

static int r_xattr_list(struct store_txn *t, uint64_t ino, xattr_list_cb cb, void *arg)
{
	unsigned char lo[9], hi[9];
	key_ino(lo, 'X', ino);
	key_ino(hi, 'X', ino + 1);
	struct xattr_scan a = { cb, arg };
	return kv_scan(RS(t->store), t, CF_META, lo, 9, hi, 9, xattr_list_kv, &a);
}

/* ---------------------------------------------------------------- data */

static int r_inline_get(struct store_txn *t, uint64_t ino, void **val, size_t *len)
{
	unsigned char k[9];
	char *v = NULL;
	int rc = kv_get(t, CF_DATA, k, key_ino(k, 'F', ino), false, &v, len);
	if (!rc)
		*val = v;
	return rc;
}

static int r_inline_put(struct store_txn *t, uint64_t ino, const void *val, size_t len)
{
	unsigned char k[9];
	return kv_put(t, CF_DATA, k, key_ino(k, 'F', ino), val, len);
}

static int r_inline_del(struct store_txn *t, uint64_t ino)
{
	unsigned char k[9];
	return kv_del(t, CF_DATA, k, key_ino(k, 'F', ino));
}

static int r_chunk_get(struct store_txn *t, uint64_t ino, uint64_t idx, void **val, size_t *len)
{
	unsigned char k[17];
	char *v;
	int rc = kv_get(t, CF_DATA, k, key_ino_u64(k, 'C', ino, idx), false, &v, len);
	if (!rc)
		*val = v;
	return rc;
}

static int r_chunk_view(struct store_txn *t, uint64_t ino, uint64_t idx,
			int (*fn)(void *arg, const void *rec, size_t len), void *arg)
{
	unsigned char k[17];
	return kv_view(t, CF_DATA, k, key_ino_u64(k, 'C', ino, idx), false, fn, arg);
}

static int r_chunk_put(struct store_txn *t, uint64_t ino, uint64_t idx, const void *val, size_t len)
{
	unsigned char k[17];
	return kv_put(t, CF_DATA, k, key_ino_u64(k, 'C', ino, idx), val, len);
}

static int r_chunk_del(struct store_txn *t, uint64_t ino, uint64_t idx)
{
	unsigned char k[17];
	return kv_del(t, CF_DATA, k, key_ino_u64(k, 'C', ino, idx));
}

struct chunk_scan {
	chunk_list_cb cb;
	void *arg;
};

static int chunk_scan_cb(void *arg, const unsigned char *k, size_t klen, const unsigned char *v, size_t vlen)
{
	struct chunk_scan *a = arg;
	if (klen != 17)
		return -EIO;
	return a->cb(a->arg, get_be64(k + 9));
}

static int r_chunk_list(struct store_txn *t, uint64_t ino, uint64_t from, chunk_list_cb cb, void *arg)
{
	unsigned char lo[17], hi[9];
	key_ino_u64(lo, 'C', ino, from);
	key_ino(hi, 'C', ino + 1);
	struct chunk_scan a = { cb, arg };
	return kv_scan(RS(t->store), t, CF_DATA, lo, sizeof lo, hi, sizeof hi, chunk_scan_cb, &a);
}

struct data_scan {
	data_scan_cb cb;
	void *arg;
};

static int data_scan_kv(void *arg, const unsigned char *k, size_t klen, const unsigned char *v, size_t vlen)
{
	struct data_scan *a = arg;
	if (klen == 9 && k[0] == 'F')
		return a->cb(a->arg, get_be64(k + 1), false, 0, v, vlen);
	if (klen == 17 && k[0] == 'C')
		return a->cb(a->arg, get_be64(k + 1), true, get_be64(k + 9), v, vlen);
	return 0;
}

static int r_data_scan(struct store *st, data_scan_cb cb, void *arg)
{
	unsigned char lo[1] = { 'C' }, hi[1] = { 'G' };
	struct data_scan a = { cb, arg };
	return kv_scan(RS(st), NULL, CF_DATA, lo, 1, hi, 1, data_scan_kv, &a);
}

struct xattr_all_scan {
	xattr_scan_cb cb;
	void *arg;
};

static int xattr_all_kv(void *arg, const unsigned char *k, size_t klen, const unsigned char *v, size_t vlen)
{
	struct xattr_all_scan *a = arg;
	if (klen < 10)
		return 0;
	return a->cb(a->arg, get_be64(k + 1), (const char *)k + 9, klen - 9, v, vlen);
}

static int r_xattr_scan(struct store *st, xattr_scan_cb cb, void *arg)
{
	unsigned char lo[1] = { 'X' }, hi[1] = { 'Y' };
	struct xattr_all_scan a = { cb, arg };
	return kv_scan(RS(st), NULL, CF_META, lo, 1, hi, 1, xattr_all_kv, &a);
}

struct names_all_scan {
	names_scan_cb cb;
	void *arg;
};

static int names_all_kv(void *arg, const unsigned char *k, size_t klen, const unsigned char *v, size_t vlen)
{
	struct names_all_scan *a = arg;
	if (klen < 18)
		return 0;
	return a->cb(a->arg, get_be64(k + 1), get_be64(k + 9), (const char *)k + 17, klen - 17);
}

static int r_names_scan(struct store *st, names_scan_cb cb, void *arg)
{
	unsigned char lo[1] = { 'R' }, hi[1] = { 'S' };
	struct names_all_scan a = { cb, arg };
	return kv_scan(RS(st), NULL, CF_META, lo, 1, hi, 1, names_all_kv, &a);
}

/* ---------------------------------------------------------------- orphans */

static int r_orphan_put(struct store_txn *t, uint64_t ino)
{
	unsigned char k[9];
	return kv_put(t, CF_META, k, key_ino(k, 'O', ino), "", 0);
}

static int r_orphan_del(struct store_txn *t, uint64_t ino)
{
	unsigned char k[9];
	return kv_del(t, CF_META, k, key_ino(k, 'O', ino));
}

static int r_orphan_list(struct store *st, ino_list_cb cb, void *arg)
{
	unsigned char lo[1] = { 'O' }, hi[1] = { 'P' };
	struct ino_scan a = { cb, arg };
	return kv_scan(RS(st), NULL, CF_META, lo, 1, hi, 1, ino_scan_cb, &a);
}

/* ---------------------------------------------------------------- changelog */

/* ---------------------------------------------------------------- provenance */

static size_t prov_key(unsigned char *k, const void *key, size_t klen)
{
	k[0] = 'V';
	memcpy(k + 1, key, klen);
	return klen + 1;
}

static int r_prov_get(struct store_txn *t, const void *key, size_t klen, void **val, size_t *len,
		      bool lock)
{
	if (klen > PROV_KEY_MAX)
		return -EINVAL;
	unsigned char k[PROV_KEY_MAX + 1];
	return kv_get(t, CF_META, k, prov_key(k, key, klen), lock, (char **)val, len);
}

static int r_prov_put(struct store_txn *t, const void *key, size_t klen, const void *val, size_t len)
{
	if (klen > PROV_KEY_MAX)
		return -EINVAL;
	unsigned char k[PROV_KEY_MAX + 1];
	return kv_put(t, CF_META, k, prov_key(k, key, klen), val, len);
}

static int r_prov_del(struct store_txn *t, const void *key, size_t klen)
{
	if (klen > PROV_KEY_MAX)
		return -EINVAL;
	unsigned char k[PROV_KEY_MAX + 1];
	return kv_del(t, CF_META, k, prov_key(k, key, klen));
}

struct prov_scan_arg {
	int (*cb)(void *arg, const void *key, size_t klen, const void *val, size_t len);
	void *arg;
};

static int prov_scan_kv(void *arg, const unsigned char *k, size_t klen, const unsigned char *v, size_t vlen)
{
	struct prov_scan_arg *a = arg;
	return a->cb(a->arg, k + 1, klen - 1, v, vlen);
}

/* The keys under a provenance prefix: [lo, hi), hi the prefix with its
 * last byte below 0xff raised. */
static int prov_range(const void *prefix, size_t plen, unsigned char *lo, size_t *n, unsigned char *hi, size_t *hn)
{
	if (plen > PROV_KEY_MAX)
		return -EINVAL;
	*n = prov_key(lo, prefix, plen);
	memcpy(hi, lo, *n);
	*hn = *n;
	while (*hn > 0 && hi[*hn - 1] == 0xff)
		(*hn)--;
	if (*hn == 0)
		return -EINVAL;
	hi[*hn - 1]++;
	return 0;
}

static int r_prov_scan(struct store_txn *t, const void *prefix, size_t plen,
		       int (*cb)(void *arg, const void *key, size_t klen, const void *val, size_t len),
		       void *arg)
{
	unsigned char lo[PROV_KEY_MAX + 2], hi[PROV_KEY_MAX + 2];
	size_t n, hn;
	int rc = prov_range(prefix, plen, lo, &n, hi, &hn);
	struct prov_scan_arg a = { cb, arg };
	return rc ? rc : kv_scan(RS(t->store), t, CF_META, lo, n, hi, hn, prov_scan_kv, &a);
}

static int r_prov_last(struct store_txn *t, const void *prefix, size_t plen,
		       int (*cb)(void *arg, const void *key, size_t klen, const void *val, size_t len),
		       void *arg)
{
	unsigned char lo[PROV_KEY_MAX + 2], hi[PROV_KEY_MAX + 2];
	size_t n, hn;
	int rc = prov_range(prefix, plen, lo, &n, hi, &hn);
	struct prov_scan_arg a = { cb, arg };
	return rc ? rc : kv_last(RS(t->store), t, CF_META, lo, n, hi, hn, prov_scan_kv, &a);
}

static int r_changelog_append(struct store_txn *tt, const struct cl_rec *rec)
{
	struct rocks_txn *t = RT(tt);
	if (!t->txn)
		return -EROFS;
	if (mfs_array_reserve(&t->log, &t->caplog, t->nlog, sizeof *t->log))
		return -ENOMEM;
	int rc = cl_encode(rec, &t->log[t->nlog].data, &t->log[t->nlog].len);
	if (!rc)
		t->nlog++;
	return rc;
}

struct log_scan {
	changelog_cb cb;
	void *arg;
};

static int log_scan_cb(void *arg, const unsigned char *k, size_t klen, const unsigned char *v, size_t vlen)
{
	struct log_scan *a = arg;
	struct cl_rec r;
	if (klen != 9 || cl_decode(v, vlen, &r)) {
		log_error("changelog record at key of %zu bytes is undecodable", klen);
		return -EIO;
	}
	r.seq = get_be64(k + 1);
	return a->cb(a->arg, &r);
}

static int r_changelog_read(struct store *st, uint64_t from, changelog_cb cb, void *arg)
{
	unsigned char lo[9], hi[1] = { 'M' };
	struct log_scan a = { cb, arg };
	return kv_scan(RS(st), NULL, CF_LOG, lo, key_ino(lo, 'L', from), hi, 1, log_scan_cb, &a);
}

static int first_key_cb(void *arg, const unsigned char *k, size_t klen, const unsigned char *v, size_t vlen)
{
	if (klen == 9)
		*(uint64_t *)arg = get_be64(k + 1);
	return 1;
}

/* Finds the last key under a one-byte tag with a reverse seek. */
static int last_u64_key(struct rocks_store *s, int cf, char tag, uint64_t *out)
{
	rocksdb_readoptions_t *ro = rocksdb_readoptions_create();
	rocksdb_iterator_t *it = s->tdb ? rocksdb_transactiondb_create_iterator_cf(s->tdb, ro, s->cf[cf])
					: rocksdb_create_iterator_cf(s->sdb, ro, s->cf[cf]);
	unsigned char k[9];
	key_ino(k, tag, UINT64_MAX);
	rocksdb_iter_seek_for_prev(it, (const char *)k, sizeof k);
	*out = 0;
	if (rocksdb_iter_valid(it)) {
		size_t klen;
		const char *key = rocksdb_iter_key(it, &klen);
		if (klen >= 9 && key[0] == tag)
			*out = get_be64((const unsigned char *)key + 1);
	}
	char *err = NULL;
	rocksdb_iter_get_error(it, &err);
	rocksdb_iter_destroy(it);
	rocksdb_readoptions_destroy(ro);
	return map_err(err, "seek");
}

static int r_changelog_bounds(struct store *st, uint64_t *first, uint64_t *last)
{
	struct rocks_store *s = RS(st);
	unsigned char lo[1] = { 'L' }, hi[1] = { 'M' };
	*first = 0;
	int rc = kv_scan(s, NULL, CF_LOG, lo, 1, hi, 1, first_key_cb, first);
	if (rc)
		return rc;
	return last_u64_key(s, CF_LOG, 'L', last);
}

/* ---------------------------------------------------------------- volume-wide */

static int r_ino_alloc(struct store *st, uint64_t *out)
{
	struct rocks_store *s = RS(st);
	if (!s->tdb)
		return -EROFS;
	pthread_mutex_lock(&s->ino_lock);
	int rc = 0;
	if (s->next_ino >= s->ino_hi) {
		/* Persist the end of the new block before handing out any of it,
		 * so a number is never given twice across a crash. */
		uint64_t hi = s->next_ino + INO_RESERVE;
		unsigned char v[8];
		put_be64(v, hi);
		char *err = NULL;
		rocksdb_transactiondb_put_cf(s->tdb, s->wopts, s->cf[CF_META], "M|inohi", 7,
					     (const char *)v, 8, &err);
		rc = map_err(err, "inode reservation");
		if (!rc)
			s->ino_hi = hi;
	}
	if (!rc)
		*out = s->next_ino++;
	pthread_mutex_unlock(&s->ino_lock);
	return rc;
}

static int r_ino_floor(struct store *st, uint64_t raise_to, uint64_t *out)
{
	struct rocks_store *s = RS(st);
	char *err = NULL;
	if (!s->tdb) {
		if (raise_to)
			return -EROFS;
		/* a view: the writer's persisted reservation bounds what it
		 * has handed out */
		size_t vlen = 0;
		char *v = rocksdb_get_cf(s->sdb, s->ropts, s->cf[CF_META], "M|inohi", 7, &vlen, &err);
		if (err)
			return map_err(err, "inode reservation");
		*out = v && vlen == 8 ? get_be64((unsigned char *)v) : MFS_ROOT_INO + 1;
		free(v);
		return 0;
	}
	pthread_mutex_lock(&s->ino_lock);
	int rc = 0;
	if (raise_to > s->ino_hi) {
		/* persisted before any number above the old floor is used, as
		 * r_ino_alloc does for each new block */
		unsigned char v[8];
		put_be64(v, raise_to);
		rocksdb_transactiondb_put_cf(s->tdb, s->wopts, s->cf[CF_META], "M|inohi", 7, (const char *)v, 8,
					     &err);
		rc = map_err(err, "inode reservation");
		if (!rc)
			s->ino_hi = raise_to;
	}
	if (!rc && raise_to > s->next_ino)
		s->next_ino = raise_to;
	if (!rc)
		*out = s->next_ino;
	pthread_mutex_unlock(&s->ino_lock);
	return rc;
}

static int r_writers(struct store *st, uint64_t *n)
{
	/* a writer holds the volume's lock: nobody else writes */
	if (!RS(st)->tdb)
		return -EOPNOTSUPP;
	*n = 0;
	return 0;
}

#define SUPER_LEN (4 + 16 + 4 + 4 + 8)

static int r_super_get(struct store *st, struct superblock *sb)
{
	struct rocks_store *s = RS(st);
	char *err = NULL;
	size_t vlen;
	char *v = s->tdb ? rocksdb_transactiondb_get_cf(s->tdb, s->ropts, s->cf[CF_META], "M|super", 7, &vlen, &err)
			 : rocksdb_get_cf(s->sdb, s->ropts, s->cf[CF_META], "M|super", 7, &vlen, &err);
	if (err)
		return map_err(err, "superblock read");
	if (!v)
		return -ENOENT;
	int rc = 0;
	const unsigned char *p = (const unsigned char *)v;
	if (vlen < 4) {
		rc = -EIO;
	} else {
		sb->format_version = get_le32(p);
		if (sb->format_version == MFS_FORMAT_VERSION && vlen == SUPER_LEN) {
			memcpy(sb->uuid, p + 4, 16);
			sb->inline_threshold = get_le32(p + 20);
			sb->chunk_size = get_le32(p + 24);
			sb->created_ns = (int64_t)get_le64(p + 28);
		}
	}
	free(v);
	return rc;
}

static int r_super_put(struct store *st, const struct superblock *sb)
{
	struct rocks_store *s = RS(st);
	if (!s->tdb)
		return -EROFS;
	unsigned char v[SUPER_LEN];
	put_le32(v, sb->format_version);
	memcpy(v + 4, sb->uuid, 16);
	put_le32(v + 20, sb->inline_threshold);
	put_le32(v + 24, sb->chunk_size);
	put_le64(v + 28, (uint64_t)sb->created_ns);
	rocksdb_writeoptions_t *wo = rocksdb_writeoptions_create();
	rocksdb_writeoptions_set_sync(wo, 1);
	char *err = NULL;
	rocksdb_transactiondb_put_cf(s->tdb, wo, s->cf[CF_META], "M|super", 7, (const char *)v, sizeof v, &err);
	rocksdb_writeoptions_destroy(wo);
	return map_err(err, "superblock write");
}

static int r_sync(struct store *st)
{
	struct rocks_store *s = RS(st);
	if (!s->tdb)
		return 0;
	char *err = NULL;
	rocksdb_transactiondb_flush_wal(s->tdb, 1, &err);
	return map_err(err, "wal sync");
}

static int r_catch_up(struct store *st)
{
	struct rocks_store *s = RS(st);
	if (!s->sdb)
		return 0;
	char *err = NULL;
	rocksdb_try_catch_up_with_primary(s->sdb, &err);
	return map_err(err, "catch up");
}

static int r_make_room(struct store *st)
{
	struct rocks_store *s = RS(st);
	if (!s->tdb)
		return 0;
	/* Deletions are tombstones in the memtable; flushed, they let
	 * compaction drop the records they cover and free their files. */
	rocksdb_flushoptions_t *fo = rocksdb_flushoptions_create();
	rocksdb_flushoptions_set_wait(fo, 1);
	int rc = 0;
	for (int i = 0; i < CF_COUNT && !rc; i++) {
		char *err = NULL;
		rocksdb_transactiondb_flush_cf(s->tdb, fo, s->cf[i], &err);
		rc = map_err(err, "flush");
	}
	rocksdb_flushoptions_destroy(fo);
	return rc;
}

static int r_statfs(struct store *st, struct statvfs *out)
{
	if (statvfs(RS(st)->dir, out) != 0)
		return -errno;
	return 0;
}

static uint64_t du_total;

static int du_cb(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
	if (flag == FTW_F)
		du_total += (uint64_t)sb->st_size;
	return 0;
}

static int r_describe(struct store *st, int (*emit)(void *, const char *, const char *), void *arg)
{
	struct rocks_store *s = RS(st);
	/* per-family figures of the metadata family; the C API gives no
	 * per-family properties on a TransactionDB */
	static const char *const props[] = {
		"rocksdb.estimate-num-keys", "rocksdb.total-sst-files-size",
		"rocksdb.cur-size-all-mem-tables", "rocksdb.estimate-live-data-size",
	};
	int rc = emit(arg, "store", "rocksdb");
	for (size_t i = 0; i < MFS_ARRAY_LEN(props) && !rc; i++) {
		char *v = s->tdb ? rocksdb_transactiondb_property_value(s->tdb, props[i])
				 : rocksdb_property_value(s->sdb, props[i]);
		if (!v)
			continue;
		char key[128];
		snprintf(key, sizeof key, "metadata.%s", props[i] + 8);
		rc = emit(arg, key, v);
		free(v);
	}
	if (!rc) {
		/* one caller at a time: stats is a command-line tool */
		char path[4096], num[32];
		snprintf(path, sizeof path, "%s/db", s->dir);
		du_total = 0;
		nftw(path, du_cb, 16, FTW_PHYS);
		snprintf(num, sizeof num, "%llu", (unsigned long long)du_total);
		rc = emit(arg, "disk_bytes", num);
	}
	return rc;
}

static int rm_cb(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
	return remove(path);
}

static int r_make_room(struct store *st);

static void r_close(struct store *st)
{
	struct rocks_store *s = RS(st);
	if (!s)
		return;
	/* Flushed memtables make every log file obsolete: the next open
	 * replays nothing, and the files are deleted now, not never. */
	if (s->tdb && s->cf[0] && r_make_room(st) != 0)
		log_warn("rocksdb: flush at close failed; the next open replays the log");
	for (int i = 0; i < s->npool; i++)
		rocksdb_transaction_destroy(s->pool[i]);
	for (int i = 0; i < CF_COUNT; i++)
		if (s->cf[i])
			rocksdb_column_family_handle_destroy(s->cf[i]);
	if (s->tdb)
		rocksdb_transactiondb_close(s->tdb);
	if (s->sdb)
		rocksdb_close(s->sdb);
	if (s->secondary_dir) {
		nftw(s->secondary_dir, rm_cb, 16, FTW_DEPTH | FTW_PHYS);
		free(s->secondary_dir);
	}
	if (s->tdb_opts)
		rocksdb_transactiondb_options_destroy(s->tdb_opts);
	if (s->topts)
		rocksdb_transaction_options_destroy(s->topts);
	if (s->wopts)
		rocksdb_writeoptions_destroy(s->wopts);
	if (s->ropts)
		rocksdb_readoptions_destroy(s->ropts);
	if (s->data_ropts)
		rocksdb_readoptions_destroy(s->data_ropts);
	for (int i = 0; i < CF_COUNT; i++)
		if (s->cf_opts[i])
			rocksdb_options_destroy(s->cf_opts[i]);
	if (s->opts)
		rocksdb_options_destroy(s->opts);
	if (s->table_opts)
		rocksdb_block_based_options_destroy(s->table_opts);
	if (s->cache)
		rocksdb_cache_destroy(s->cache);
	pthread_mutex_destroy(&s->commit_lock);
	pthread_mutex_destroy(&s->ino_lock);
	pthread_mutex_destroy(&s->pool_lock);
	free(s->dir);
	free(s->base.spec);
	free(s);
}

static const struct store_ops rocks_ops = {
	.name = "rocksdb",
	.begin = r_begin,
	.begin_read = r_begin_read,
	.commit = r_commit,
	.abort = r_abort,
	.lock_global = r_lock_global,
	.inode_get = r_inode_get,
	.inode_put = r_inode_put,
	.inode_del = r_inode_del,
	.inode_scan = r_inode_scan,
	.dirent_scan = r_dirent_scan,
	.data_scan = r_data_scan,
	.xattr_scan = r_xattr_scan,
	.names_scan = r_names_scan,
	.check_indexes = r_check_indexes,
	.dirent_get = r_dirent_get,
	.dirent_put = r_dirent_put,
	.dirent_del = r_dirent_del,
	.names_of = r_names_of,
	.dir_list = r_dir_list,
	.xattr_get = r_xattr_get,
	.xattr_put = r_xattr_put,
	.xattr_del = r_xattr_del,
	.xattr_list = r_xattr_list,
	.inline_get = r_inline_get,
	.inline_put = r_inline_put,
	.inline_del = r_inline_del,
	.chunk_get = r_chunk_get,
	.chunk_view = r_chunk_view,
	.chunk_put = r_chunk_put,
	.chunk_del = r_chunk_del,
	.chunk_list = r_chunk_list,
	.orphan_put = r_orphan_put,
	.orphan_del = r_orphan_del,
	.orphan_list = r_orphan_list,
	.prov_get = r_prov_get,
	.prov_put = r_prov_put,
	.prov_scan = r_prov_scan,
	.prov_last = r_prov_last,
	.prov_del = r_prov_del,
	.changelog_append = r_changelog_append,
	.changelog_read = r_changelog_read,
	.changelog_bounds = r_changelog_bounds,
	.ino_alloc = r_ino_alloc,
	.ino_floor = r_ino_floor,
	.writers = r_writers,
	.super_get = r_super_get,
	.super_put = r_super_put,
	.sync = r_sync,
	.catch_up = r_catch_up,
	.statfs = r_statfs,
	.make_room = r_make_room,
	.describe = r_describe,
	.close = r_close,
};

static void setup_options(struct rocks_store *s, int flags)
{
	s->opts = rocksdb_options_create();
	rocksdb_options_set_create_if_missing(s->opts, (flags & STORE_OPEN_CREATE) ? 1 : 0);
	rocksdb_options_set_error_if_exists(s->opts, (flags & STORE_OPEN_CREATE) ? 1 : 0);
	rocksdb_options_set_create_missing_column_families(s->opts, (flags & STORE_OPEN_CREATE) ? 1 : 0);
	/* A log file is deleted only once every column family has flushed past
	 * it; a family written rarely would keep old logs forever. Past this
	 * total, the family holding the oldest log is flushed. */
	rocksdb_options_set_max_total_wal_size(s->opts, 64u << 20);
	/* Two cores: background flushes and compactions share them with the daemon. */
	rocksdb_options_set_max_background_jobs(s->opts, 2);
	if (flags & STORE_OPEN_READONLY)
		rocksdb_options_set_max_open_files(s->opts, -1); /* required of a secondary */
	/* Point lookups (inode, entry by name) dominate: a bloom filter saves
	 * disk reads for misses, and the block cache keeps hot metadata. */
	s->cache = rocksdb_cache_create_lru(64u << 20);
	s->table_opts = rocksdb_block_based_options_create();
	rocksdb_block_based_options_set_block_cache(s->table_opts, s->cache);
	rocksdb_block_based_options_set_filter_policy(s->table_opts, rocksdb_filterpolicy_create_bloom(10));
	/* XXH3 block checksums (kXXH3 = 4): Debian's portable build computes
	 * the default CRC32C without the CPU's instruction, and it showed as
	 * the daemon's top symbol reading files */
	rocksdb_block_based_options_set_checksum(s->table_opts, 4);
	for (int i = 0; i < CF_COUNT; i++) {
		s->cf_opts[i] = rocksdb_options_create_copy(s->opts);
		rocksdb_options_set_block_based_table_factory(s->cf_opts[i], s->table_opts);
	}
	/* File contents are mostly incompressible in practice (media, archives,
	 * model weights): Snappy over them took a sixth of the daemon's CPU in
	 * a sequential write and saved nothing. */
	rocksdb_options_set_compression(s->cf_opts[CF_DATA], rocksdb_no_compression);
	/* Chunks (256 KiB by default) go to blob files as memtables flush, so
	 * compactions move small references instead of rewriting every chunk
	 * at each level; inline data, below the threshold, stays in the tables
	 * beside its neighbours. Garbage collection rewrites what is still live
	 * in the oldest blob files so that deleted files give their space back. */
	rocksdb_options_set_enable_blob_files(s->cf_opts[CF_DATA], 1);
	rocksdb_options_set_min_blob_size(s->cf_opts[CF_DATA], 128u << 10);
	rocksdb_options_set_blob_file_size(s->cf_opts[CF_DATA], 256u << 20);
	rocksdb_options_set_enable_blob_gc(s->cf_opts[CF_DATA], 1);
	s->wopts = rocksdb_writeoptions_create();
	/* close() durability needs only the WAL written to the kernel; fsync()
	 * syncs it (r_sync). */
	rocksdb_writeoptions_set_sync(s->wopts, 0);
	s->ropts = rocksdb_readoptions_create();
	s->data_ropts = rocksdb_readoptions_create();
	rocksdb_readoptions_set_verify_checksums(s->data_ropts, 0);
	s->topts = rocksdb_transaction_options_create();
	rocksdb_transaction_options_set_deadlock_detect(s->topts, 1);
	rocksdb_transaction_options_set_lock_timeout(s->topts, LOCK_TIMEOUT_MS);
	s->tdb_opts = rocksdb_transactiondb_options_create();
	rocksdb_transactiondb_options_set_transaction_lock_timeout(s->tdb_opts, LOCK_TIMEOUT_MS);
}

int rocks_store_open(const char *dir, int flags, struct store **out, char *errbuf, size_t errlen)
{
	struct rocks_store *s = calloc(1, sizeof *s);
	if (!s)
		return -ENOMEM;
	s->base.ops = &rocks_ops;
	s->base.spec = strdup(dir);
	s->dir = strdup(dir);
	pthread_mutex_init(&s->commit_lock, NULL);
	pthread_mutex_init(&s->ino_lock, NULL);
	pthread_mutex_init(&s->pool_lock, NULL);
	setup_options(s, flags);

	char dbpath[4096];
	snprintf(dbpath, sizeof dbpath, "%s/db", dir);
	char *err = NULL;
	if (flags & STORE_OPEN_READONLY) {
		char tmpl[] = "/tmp/metafs-view-XXXXXX";
		if (!mkdtemp(tmpl)) {
			int e = -errno;
			snprintf(errbuf, errlen, "cannot make a temporary directory: %s", strerror(errno));
			r_close(&s->base);
			return e;
		}
		s->secondary_dir = strdup(tmpl);
		s->sdb = rocksdb_open_as_secondary_column_families(s->opts, dbpath, s->secondary_dir, CF_COUNT,
								    cf_names, (const rocksdb_options_t *const *)s->cf_opts,
								    s->cf, &err);
	} else {
		s->tdb = rocksdb_transactiondb_open_column_families(s->opts, s->tdb_opts, dbpath, CF_COUNT,
								    cf_names, (const rocksdb_options_t *const *)s->cf_opts,
								    s->cf, &err);
	}
	if (err) {
		snprintf(errbuf, errlen, "%s", err);
		int rc = map_err(err, "open");
		memset(s->cf, 0, sizeof s->cf);
		r_close(&s->base);
		return rc;
	}

	int rc = last_u64_key(s, CF_LOG, 'L', &s->next_seq);
	if (!rc) {
		s->next_seq++;
		char *v = s->tdb ? rocksdb_transactiondb_get_cf(s->tdb, s->ropts, s->cf[CF_META], "M|inohi", 7, &(size_t){ 0 }, &err)
				 : NULL;
		rc = map_err(err, "open");
		uint64_t hi = v ? get_be64((unsigned char *)v) : MFS_ROOT_INO + 1;
		free(v);
		/* numbers below the persisted reservation may have been handed out */
		s->next_ino = s->ino_hi = hi;
	}
	if (rc) {
		snprintf(errbuf, errlen, "cannot read the volume: %s", strerror(-rc));
		r_close(&s->base);
		return rc;
	}
	*out = &s->base;
	return 0;
}
