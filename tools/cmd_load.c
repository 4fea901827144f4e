/* SPDX-License-Identifier: Apache-2.0 */
/*
 * metafs load: fills a freshly formatted volume from a dump (the format is
 * described in cmd_dump.c).
 *
 * Records go in as they are read, straight through the store interface (the
 * namespace would hand out new inode numbers and cookies, where a load keeps
 * the dump's), in transactions of at most BATCH_RECORDS records or
 * BATCH_BYTES bytes. Each line is checked before it is written: it must be
 * JSON of a known kind, and name only inodes an earlier inode line
 * described. The whole is checked against the end record (counts and a
 * SHA-256), so a dump cut short is caught. When anything goes wrong -- bad
 * input, a store error, an interrupt -- everything written is deleted again
 * and the target is left as it was, freshly formatted and empty. Only when
 * every record is in are the superblock (uuid, inline threshold, chunk
 * size) and the inode allocator's floor set, and the search index built:
 * the changelog is not carried, and the index is derived from the metadata.
 */
#include "tools.h"
#include "blockstore.h"
#include "indexer.h"
#include "metadata.h"
#include "common.h"

#include <errno.h>
#include <getopt.h>
#include <jansson.h>
#include <limits.h>
#include <openssl/evp.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define BATCH_RECORDS 1000
#define BATCH_BYTES (8u << 20)
/* a 16 MiB chunk, the largest record, is about 22 MB of base64 */
#define LINE_MAX_BYTES (64u << 20)

static volatile sig_atomic_t stopping;

static void on_signal(int sig)
{
	stopping = 1;
}

/* One record, decoded and checked, waiting for its transaction. */
struct rec {
	int kind;
	uint64_t ino, idx, parent;
	struct inode_rec in;
	struct dirent_rec de;
	unsigned char *name; /* entry or xattr name (NUL after it), provenance key */
	size_t name_len;
	unsigned char *val; /* xattr value, framed content, provenance value */
	size_t val_len;
};

/* An inode loaded, for checking the records that name it. */
struct known {
	uint64_t ino, next_cookie;
	uint32_t mode, flags;
};

struct loader {
	struct mfs_volume *v;
	struct store *s;
	const char *vol, *src;
	uint64_t line, bytes, total_bytes;
	EVP_MD_CTX *sha;
	bool header, end;
	struct superblock sb; /* from the dump */
	uint64_t floor;
	struct known *inos; /* ascending */
	size_t ninos, capinos;
	uint64_t n[DK_COUNT], data_bytes;
	struct rec *batch;
	size_t nbatch, capbatch, batch_bytes;
	uint64_t batch_line; /* the line of the batch's first record */
	/* the target before the load, restored when it fails */
	struct inode_rec root0;
	struct superblock sb0;
	bool sb_written;
	struct progress_line pl;
	char err[1024];
};

static int __attribute__((format(printf, 2, 3))) lfail(struct loader *l, const char *fmt, ...)
{
	if (!l->err[0]) {
		int n = snprintf(l->err, sizeof l->err, "%s: line %llu: ", l->src, (unsigned long long)l->line);
		va_list ap;
		va_start(ap, fmt);
		if (n > 0 && (size_t)n < sizeof l->err)
			vsnprintf(l->err + n, sizeof l->err - (size_t)n, fmt, ap);
		va_end(ap);
	}
	return -EINVAL;
}

/* A failure that is not one line's. */
static int __attribute__((format(printf, 3, 4))) sfail(struct loader *l, int rc, const char *fmt, ...)
{
	if (!l->err[0]) {
		va_list ap;
		va_start(ap, fmt);
		vsnprintf(l->err, sizeof l->err, fmt, ap);
		va_end(ap);
	}
	return rc;
}

static void rec_free(struct rec *r)
{
	free(r->name);
	free(r->val);
}

static const struct known *known(const struct loader *l, uint64_t ino)
{
	size_t lo = 0, hi = l->ninos;
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		if (l->inos[mid].ino < ino)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo < l->ninos && l->inos[lo].ino == ino ? &l->inos[lo] : NULL;
}

static void load_progress(struct loader *l, bool force)
{
	uint64_t recs = 0;
	for (int i = 0; i < DK_COUNT; i++)
		recs += l->n[i];
	if (l->total_bytes)
		progress_show(&l->pl, force, "load: %.1f/%.1f MB, %llu records", (double)l->bytes / 1e6,
			      (double)l->total_bytes / 1e6, (unsigned long long)recs);
	else
		progress_show(&l->pl, force, "load: %.1f MB, %llu records", (double)l->bytes / 1e6,
			      (unsigned long long)recs);
}

/* ---------------------------------------------------------------- fields */

static bool get_u32(json_t *o, const char *key, uint32_t *out)
{
	uint64_t v;
	if (!dump_get_u64(o, key, &v) || v > UINT32_MAX)
		return false;
	*out = (uint32_t)v;
	return true;
}

static bool get_ts(json_t *o, const char *key, struct timespec *ts)
{
	json_t *a = json_object_get(o, key);
	if (!json_is_array(a) || json_array_size(a) != 2 || !json_is_integer(json_array_get(a, 0)) ||
	    !json_is_integer(json_array_get(a, 1)))
		return false;
	json_int_t ns = json_integer_value(json_array_get(a, 1));
	if (ns < 0 || ns > 999999999)
		return false;
	ts->tv_sec = (time_t)json_integer_value(json_array_get(a, 0));
	ts->tv_nsec = (long)ns;
	return true;
}

/* Bytes under key (or key_base64); why names what is wrong with them. */
static int get_bytes(struct loader *l, json_t *o, const char *key, const char *what, unsigned char **out,
		     size_t *len)
{
	int rc = dump_get_bytes(o, key, out, len);
	if (rc == -ENOENT)
		return lfail(l, "%s record without its %s", what, key);
	if (rc == -EINVAL)
		return lfail(l, "%s record: its %s is neither a string nor base64", what, key);
	return rc ? sfail(l, rc, "out of memory") : 0;
}

/* "data" and the provenance key and value are base64 always. */
static int get_b64(struct loader *l, json_t *o, const char *key, const char *what, unsigned char **out,
		   size_t *len)
{
	json_t *v = json_object_get(o, key);
	if (!json_is_string(v))
		return lfail(l, "%s record without its %s", what, key);
	int rc = dump_b64_decode(json_string_value(v), json_string_length(v), out, len);
	if (rc == -EINVAL)
		return lfail(l, "%s record: its %s is not base64", what, key);
	return rc ? sfail(l, rc, "out of memory") : 0;
}

static const char *quoted(const unsigned char *name, size_t len, char *buf, size_t size)
{
	snprintf(buf, size, "'%.*s'", (int)(len > 64 ? 64 : len), (const char *)name);
	return buf;
}

/* ---------------------------------------------------------------- records */

static bool is_pow2(uint32_t x)
{
	return x && !(x & (x - 1));
}

static int parse_header(struct loader *l, json_t *o)
{
	const char *f = json_string_value(json_object_get(o, "format"));
	if (!f || strcmp(f, DUMP_FORMAT) != 0)
		return lfail(l, "not a metafs dump (its first line is not a \"%s\" header)", DUMP_FORMAT);
	json_t *ver = json_object_get(o, "version");
	if (!json_is_integer(ver))
		return lfail(l, "the header gives no format version");
	if (json_integer_value(ver) != DUMP_VERSION)
		return lfail(l, "dump format version %lld: this metafs reads version %d only",
			     (long long)json_integer_value(ver), DUMP_VERSION);
	json_t *sb = json_object_get(o, "superblock");
	uint32_t fv, it, cs;
	json_t *created = json_object_get(sb, "created_ns");
	if (!json_is_object(sb) || !get_u32(sb, "format_version", &fv) || !get_u32(sb, "inline_threshold", &it) ||
	    !get_u32(sb, "chunk_size", &cs) || !json_is_integer(created) ||
	    dump_uuid_parse(json_string_value(json_object_get(sb, "uuid")), l->sb.uuid))
		return lfail(l, "the header's superblock is incomplete or malformed");
	if (fv != MFS_FORMAT_VERSION)
		return lfail(l, "the volume had format version %u; this metafs makes version %u", fv,
			     MFS_FORMAT_VERSION);
	if (!is_pow2(cs) || cs < 4096 || cs > MFS_MAX_CHUNK_SIZE || it > (1u << 20))
		return lfail(l, "chunk size %u or inline threshold %u out of range", cs, it);
	l->sb.format_version = fv;
	l->sb.inline_threshold = it;
	l->sb.chunk_size = cs;
	l->sb.created_ns = (int64_t)json_integer_value(created);
	if (!dump_get_u64(o, "ino_floor", &l->floor))
		return lfail(l, "the header gives no ino_floor");
	l->header = true;
	return 0;
}

static bool valid_type(uint32_t mode)
{
	switch (mode & S_IFMT) {
	case S_IFREG: case S_IFDIR: case S_IFLNK: case S_IFIFO: case S_IFSOCK: case S_IFCHR: case S_IFBLK:
		return true;
	default:
		return false;
	}
}

static int parse_inode(struct loader *l, json_t *o, struct rec *r)
{
	struct inode_rec *in = &r->in;
	if (!dump_get_u64(o, "ino", &in->ino) || !get_u32(o, "mode", &in->mode) || !get_u32(o, "nlink", &in->nlink) ||
	    !get_u32(o, "uid", &in->uid) || !get_u32(o, "gid", &in->gid) || !dump_get_u64(o, "rdev", &in->rdev) ||
	    !dump_get_u64(o, "size", &in->size) || !get_u32(o, "flags", &in->flags) ||
	    !dump_get_u64(o, "version", &in->version) || !dump_get_u64(o, "parent", &in->parent) ||
	    !dump_get_u64(o, "next_cookie", &in->next_cookie) || !get_ts(o, "atime", &in->atime) ||
	    !get_ts(o, "mtime", &in->mtime) || !get_ts(o, "ctime", &in->ctime) || !get_ts(o, "btime", &in->btime))
		return lfail(l, "inode record with a field missing or out of range");
	for (int k = DK_INODE + 1; k < DK_COUNT; k++)
		if (l->n[k])
			return lfail(l, "inode %llu comes after other records: inode lines come first",
				     (unsigned long long)in->ino);
	if (in->ino == 0 || !valid_type(in->mode) || in->nlink == 0)
		return lfail(l, "inode %llu: number 0, an unknown file type or no links",
			     (unsigned long long)in->ino);
	if (in->ino == MFS_ROOT_INO && !S_ISDIR(in->mode))
		return lfail(l, "inode %d, the root, is not a directory", MFS_ROOT_INO);
	if (l->ninos && in->ino <= l->inos[l->ninos - 1].ino)
		return lfail(l, "inode %llu after inode %llu: inode lines go in ascending order, each inode once",
			     (unsigned long long)in->ino, (unsigned long long)l->inos[l->ninos - 1].ino);
	if (mfs_array_reserve(&l->inos, &l->capinos, l->ninos, sizeof *l->inos))
		return sfail(l, -ENOMEM, "out of memory");
	l->inos[l->ninos++] = (struct known){ in->ino, S_ISDIR(in->mode) ? in->next_cookie : 0, in->mode,
					      in->flags };
	r->ino = in->ino;
	return 0;
}

static int parse_dirent(struct loader *l, json_t *o, struct rec *r)
{
	uint32_t type;
	if (!dump_get_u64(o, "parent", &r->parent) || !dump_get_u64(o, "ino", &r->de.ino) ||
	    !get_u32(o, "type", &type) || !dump_get_u64(o, "cookie", &r->de.cookie))
		return lfail(l, "dirent record with a field missing or out of range");
	r->de.type = type;
	int rc = get_bytes(l, o, "name", "dirent", &r->name, &r->name_len);
	if (rc)
		return rc;
	char q[80];
	quoted(r->name, r->name_len, q, sizeof q);
	if (r->name_len == 0 || r->name_len > MFS_NAME_MAX || memchr(r->name, '/', r->name_len) ||
	    memchr(r->name, 0, r->name_len) || !strcmp((char *)r->name, ".") || !strcmp((char *)r->name, ".."))
		return lfail(l, "the entry name %s is not a valid file name", q);
	const struct known *dir = known(l, r->parent), *target = known(l, r->de.ino);
	if (!dir || !S_ISDIR(dir->mode))
		return lfail(l, "the entry %s is in directory %llu, which %s", q, (unsigned long long)r->parent,
			     dir ? "is not a directory" : "no inode line describes");
	if (!target)
		return lfail(l, "the entry %s names inode %llu, which no inode line describes", q,
			     (unsigned long long)r->de.ino);
	if (r->de.type != (target->mode & S_IFMT))
		return lfail(l, "the entry %s gives type %o, inode %llu has type %o", q, r->de.type,
			     (unsigned long long)r->de.ino, target->mode & S_IFMT);
	/* cookies 0 to 2 are the start, "." and ".."; the directory hands
	 * out its next_cookie next, which no entry may hold already */
	if (r->de.cookie < 3 || r->de.cookie >= dir->next_cookie)
		return lfail(l, "the entry %s has cookie %llu, outside 3 to its directory's next_cookie %llu", q,
			     (unsigned long long)r->de.cookie, (unsigned long long)dir->next_cookie);
	return 0;
}

static int parse_xattr(struct loader *l, json_t *o, struct rec *r)
{
	if (!dump_get_u64(o, "ino", &r->ino))
		return lfail(l, "xattr record without its inode");
	int rc = get_bytes(l, o, "name", "xattr", &r->name, &r->name_len);
	if (!rc)
		rc = get_bytes(l, o, "value", "xattr", &r->val, &r->val_len);
	if (rc)
		return rc;
	char q[80];
	quoted(r->name, r->name_len, q, sizeof q);
	if (r->name_len == 0 || r->name_len > MFS_XATTR_NAME_MAX || memchr(r->name, 0, r->name_len))
		return lfail(l, "the xattr name %s is not valid", q);
	if (r->val_len > MFS_XATTR_VALUE_MAX)
		return lfail(l, "the value of xattr %s has %zu bytes, more than %d", q, r->val_len,
			     MFS_XATTR_VALUE_MAX);
	if (!known(l, r->ino))
		return lfail(l, "the xattr %s is on inode %llu, which no inode line describes", q,
			     (unsigned long long)r->ino);
	return 0;
}

static int parse_content(struct loader *l, json_t *o, struct rec *r, bool chunk)
{
	const char *what = chunk ? "chunk" : "inline";
	if (!dump_get_u64(o, "ino", &r->ino) || (chunk && !dump_get_u64(o, "idx", &r->idx)))
		return lfail(l, "%s record without its inode%s", what, chunk ? " or index" : "");
	const struct known *k = known(l, r->ino);
	if (!k)
		return lfail(l, "%s content of inode %llu, which no inode line describes", what,
			     (unsigned long long)r->ino);
	bool chunked = k->flags & INODE_F_CHUNKED;
	if (chunk ? !S_ISREG(k->mode) || !chunked : !(S_ISREG(k->mode) || S_ISLNK(k->mode)) || chunked)
		return lfail(l, "%s content for inode %llu, which keeps its content %s", what,
			     (unsigned long long)r->ino,
			     !(S_ISREG(k->mode) || S_ISLNK(k->mode)) ? "nowhere (not a file)" : chunked ? "in chunks" : "inline");
	unsigned char *payload;
	size_t plen;
	int rc = get_b64(l, o, "data", what, &payload, &plen);
	if (rc)
		return rc;
	size_t max = chunk ? l->sb.chunk_size : MFS_MAX_CHUNK_SIZE;
	if (plen > max) {
		free(payload);
		return lfail(l, "%s content of inode %llu has %zu bytes, more than %zu", what,
			     (unsigned long long)r->ino, plen, max);
	}
	/* framed anew, with the checksums of the target's blockstore */
	rc = bs_frame(payload, plen, &r->val, &r->val_len);
	free(payload);
	if (rc)
		return sfail(l, rc, "out of memory");
	l->data_bytes += plen;
	return 0;
}

static int parse_prov(struct loader *l, json_t *o, struct rec *r)
{
	int rc = get_b64(l, o, "key", "prov", &r->name, &r->name_len);
	if (!rc)
		rc = get_b64(l, o, "value", "prov", &r->val, &r->val_len);
	if (rc)
		return rc;
	if (r->name_len == 0 || r->name_len > PROV_KEY_MAX)
		return lfail(l, "a provenance key of %zu bytes (1 to %d)", r->name_len, PROV_KEY_MAX);
	return 0;
}

static int parse_end(struct loader *l, json_t *o)
{
	for (int k = 0; k < DK_COUNT; k++) {
		uint64_t want;
		if (!dump_get_u64(o, dump_count_keys[k], &want))
			return lfail(l, "the end record has no count of %s", dump_count_keys[k]);
		if (want != l->n[k])
			return lfail(l, "the end record counts %llu %s, the dump holds %llu: records are missing",
				     (unsigned long long)want, dump_count_keys[k], (unsigned long long)l->n[k]);
	}
	unsigned char md[EVP_MAX_MD_SIZE];
	unsigned int mdlen = 0;
	char hex[2 * EVP_MAX_MD_SIZE + 1] = "";
	if (EVP_DigestFinal_ex(l->sha, md, &mdlen) != 1)
		return sfail(l, -EIO, "SHA-256 failed");
	for (unsigned i = 0; i < mdlen; i++)
		snprintf(hex + 2 * i, 3, "%02x", md[i]);
	const char *want = json_string_value(json_object_get(o, "sha256"));
	if (!want || strcmp(want, hex) != 0)
		return lfail(l, "the SHA-256 of the lines before the end record is %s, the end record says %s: "
				"the dump was altered or damaged",
			     hex, want ? want : "nothing");
	l->end = true;
	return 0;
}

static int parse_line(struct loader *l, const char *buf, size_t len, bool *is_end)
{
	*is_end = false;
	json_error_t je;
	json_t *o = json_loadb(buf, len, JSON_ALLOW_NUL | JSON_REJECT_DUPLICATES, &je);
	if (!o)
		return lfail(l, "malformed JSON: %s (column %d)", je.text, je.column);
	int rc = 0;
	if (!json_is_object(o)) {
		rc = lfail(l, "not a JSON object");
		goto out;
	}
	if (!l->header) {
		rc = parse_header(l, o);
		goto out;
	}
	const char *t = json_string_value(json_object_get(o, "t"));
	if (!t) {
		rc = lfail(l, "a record without its type (\"t\")");
		goto out;
	}
	if (!strcmp(t, "end")) {
		*is_end = true;
		rc = parse_end(l, o);
		goto out;
	}
	int kind = -1;
	for (int k = 0; k < DK_COUNT; k++)
		if (!strcmp(t, dump_kind_names[k]))
			kind = k;
	if (kind < 0) {
		rc = lfail(l, "unknown record type \"%.40s\"", t);
		goto out;
	}
	struct rec r = { .kind = kind };
	switch (kind) {
	case DK_INODE: rc = parse_inode(l, o, &r); break;
	case DK_DIRENT: rc = parse_dirent(l, o, &r); break;
	case DK_XATTR: rc = parse_xattr(l, o, &r); break;
	case DK_INLINE: rc = parse_content(l, o, &r, false); break;
	case DK_CHUNK: rc = parse_content(l, o, &r, true); break;
	case DK_PROV: rc = parse_prov(l, o, &r); break;
	}
	if (!rc && mfs_array_reserve(&l->batch, &l->capbatch, l->nbatch, sizeof *l->batch))
		rc = sfail(l, -ENOMEM, "out of memory");
	if (rc) {
		rec_free(&r);
		goto out;
	}
	if (!l->nbatch)
		l->batch_line = l->line;
	l->batch[l->nbatch++] = r;
	l->batch_bytes += sizeof r + r.name_len + r.val_len;
	l->n[kind]++;
out:
	json_decref(o);
	return rc;
}

/* ---------------------------------------------------------------- writing */

static int apply(struct store_txn *t, const struct rec *r)
{
	const struct store_ops *o = t->store->ops;
	switch (r->kind) {
	case DK_INODE: return o->inode_put(t, &r->in);
	case DK_DIRENT: return o->dirent_put(t, r->parent, (const char *)r->name, r->name_len, &r->de);
	case DK_XATTR: return o->xattr_put(t, r->ino, (const char *)r->name, r->val, r->val_len);
	case DK_INLINE: return o->inline_put(t, r->ino, r->val, r->val_len);
	case DK_CHUNK: return o->chunk_put(t, r->ino, r->idx, r->val, r->val_len);
	case DK_PROV: return o->prov_put(t, r->name, r->name_len, r->val, r->val_len);
	}
	return -EINVAL;
}

/* Commits the batch in one transaction, run again whole when the store asks
 * (a cluster connection lost mid-way, say). */
static int flush(struct loader *l)
{
	if (!l->nbatch)
		return 0;
	struct store *s = l->s;
	unsigned backoff = 10000;
	int rc;
	for (int attempt = 0;; attempt++) {
		struct store_txn *t;
		rc = s->ops->begin(s, &t);
		if (!rc) {
			for (size_t i = 0; i < l->nbatch && !rc; i++)
				rc = apply(t, &l->batch[i]);
			if (rc)
				s->ops->abort(t);
			else
				rc = s->ops->commit(t);
		}
		if (rc != MFS_ERETRY || attempt == 20)
			break;
		mfs_sleep_us(backoff);
		if (backoff < 1000000)
			backoff *= 2;
	}
	for (size_t i = 0; i < l->nbatch; i++)
		rec_free(&l->batch[i]);
	l->nbatch = 0;
	l->batch_bytes = 0;
	if (rc == MFS_ERETRY)
		return sfail(l, -EIO, "the store kept refusing lines %llu to %llu as conflicting (two entries of one "
				      "directory with one cookie?)",
			     (unsigned long long)l->batch_line, (unsigned long long)l->line);
	if (rc)
		return sfail(l, rc, "cannot write lines %llu to %llu: %s", (unsigned long long)l->batch_line,
			     (unsigned long long)l->line, strerror(-rc));
	return 0;
}

/* ---------------------------------------------------------------- the target */

struct probe {
	char what[160];
};

static int probe_inode(void *arg, uint64_t ino, const struct inode_rec *in)
{
	struct probe *p = arg;
	if (ino == MFS_ROOT_INO)
		return 0;
	snprintf(p->what, sizeof p->what, "inode %llu", (unsigned long long)ino);
	return 1;
}

static int probe_dirent(void *arg, uint64_t parent, const char *name, size_t len, const struct dirent_rec *d)
{
	struct probe *p = arg;
	snprintf(p->what, sizeof p->what, "the entry '%.*s'", (int)(len > 64 ? 64 : len), name);
	return 1;
}

static int probe_xattr(void *arg, uint64_t ino, const char *name, size_t len, const void *v, size_t vlen)
{
	struct probe *p = arg;
	snprintf(p->what, sizeof p->what, "xattr '%.*s' of inode %llu", (int)(len > 64 ? 64 : len), name,
		 (unsigned long long)ino);
	return 1;
}

static int probe_data(void *arg, uint64_t ino, bool chunk, uint64_t idx, const void *v, size_t len)
{
	struct probe *p = arg;
	snprintf(p->what, sizeof p->what, "file content of inode %llu", (unsigned long long)ino);
	return 1;
}

static int probe_prov(void *arg, const void *key, size_t klen, const void *v, size_t len)
{
	struct probe *p = arg;
	snprintf(p->what, sizeof p->what, "provenance records");
	return 1;
}

/* 0 when the target holds nothing but its root directory (what is found
 * otherwise in p->what), and keeps what load would overwrite. */
static int check_empty(struct loader *l, struct probe *p)
{
	struct store *s = l->s;
	p->what[0] = 0;
	int rc = s->ops->inode_scan(s, probe_inode, p);
	if (!rc && !p->what[0])
		rc = s->ops->dirent_scan(s, probe_dirent, p);
	if (!rc && !p->what[0])
		rc = s->ops->xattr_scan(s, probe_xattr, p);
	if (!rc && !p->what[0])
		rc = s->ops->data_scan(s, probe_data, p);
	if (!rc && !p->what[0]) {
		struct store_txn *t;
		rc = s->ops->begin_read(s, &t);
		if (!rc) {
			rc = s->ops->prov_scan(t, "", 0, probe_prov, p);
			s->ops->abort(t);
		}
	}
	uint64_t first = 0, last = 0;
	if (!rc && !p->what[0])
		rc = s->ops->changelog_bounds(s, &first, &last);
	if (!rc && !p->what[0] && last)
		snprintf(p->what, sizeof p->what, "a changelog of %llu records: it has been used",
			 (unsigned long long)(last - first + 1));
	if (!rc) {
		struct store_txn *t;
		rc = s->ops->begin_read(s, &t);
		if (!rc) {
			rc = s->ops->inode_get(t, MFS_ROOT_INO, &l->root0, false);
			s->ops->abort(t);
		}
		if (rc == -ENOENT && !p->what[0]) {
			snprintf(p->what, sizeof p->what, "no root directory: it is damaged");
			rc = 0;
		}
	}
	if (!rc)
		rc = s->ops->super_get(s, &l->sb0);
	return rc;
}

/* Deletes, in transactions of BATCH_RECORDS, what the scans show. */
struct wiper {
	struct store *s;
	struct store_txn *t;
	size_t n;
	uint64_t deleted;
};

static int wiped(struct wiper *w, int rc)
{
	if (rc) {
		if (w->t)
			w->s->ops->abort(w->t);
		w->t = NULL;
		w->n = 0;
		return rc;
	}
	w->deleted++;
	if (++w->n < BATCH_RECORDS)
		return 0;
	rc = w->s->ops->commit(w->t);
	w->t = NULL;
	w->n = 0;
	return rc;
}

static int wipe_txn(struct wiper *w)
{
	return w->t ? 0 : w->s->ops->begin(w->s, &w->t);
}

static int wipe_inode(void *arg, uint64_t ino, const struct inode_rec *in)
{
	struct wiper *w = arg;
	if (ino == MFS_ROOT_INO)
		return 0;
	int rc = wipe_txn(w);
	return wiped(w, rc ? rc : w->s->ops->inode_del(w->t, ino));
}

static int wipe_dirent(void *arg, uint64_t parent, const char *name, size_t len, const struct dirent_rec *d)
{
	struct wiper *w = arg;
	if (!d)
		return 0; /* load writes none that do not decode */
	int rc = wipe_txn(w);
	return wiped(w, rc ? rc : w->s->ops->dirent_del(w->t, parent, name, len, d));
}

static int wipe_xattr(void *arg, uint64_t ino, const char *name, size_t len, const void *v, size_t vlen)
{
	struct wiper *w = arg;
	char n[MFS_XATTR_NAME_MAX + 1];
	if (len > MFS_XATTR_NAME_MAX)
		return 0;
	memcpy(n, name, len);
	n[len] = 0;
	int rc = wipe_txn(w);
	return wiped(w, rc ? rc : w->s->ops->xattr_del(w->t, ino, n));
}

static int wipe_data(void *arg, uint64_t ino, bool chunk, uint64_t idx, const void *v, size_t len)
{
	struct wiper *w = arg;
	int rc = wipe_txn(w);
	if (!rc)
		rc = chunk ? w->s->ops->chunk_del(w->t, ino, idx) : w->s->ops->inline_del(w->t, ino);
	return wiped(w, rc);
}

static int wipe_prov(void *arg, const void *key, size_t klen, const void *v, size_t len)
{
	struct wiper *w = arg;
	int rc = wipe_txn(w);
	return wiped(w, rc ? rc : w->s->ops->prov_del(w->t, key, klen));
}

/* After a failed load: deletes everything the load wrote, which is
 * everything there is but the root (the target was empty), and puts the
 * root and the superblock back as they were. Passes until one finds
 * nothing left, so that a batch lost to a retry is taken by the next. */
static int wipe(struct loader *l)
{
	struct store *s = l->s;
	struct wiper w = { .s = s };
	int rc = 0;
	for (int pass = 0; pass < 6; pass++) {
		w.deleted = 0;
		rc = s->ops->inode_scan(s, wipe_inode, &w);
		if (!rc)
			rc = s->ops->dirent_scan(s, wipe_dirent, &w);
		if (!rc)
			rc = s->ops->xattr_scan(s, wipe_xattr, &w);
		if (!rc)
			rc = s->ops->data_scan(s, wipe_data, &w);
		if (!rc) {
			struct store_txn *rt;
			rc = s->ops->begin_read(s, &rt);
			if (!rc) {
				rc = s->ops->prov_scan(rt, "", 0, wipe_prov, &w);
				s->ops->abort(rt);
			}
		}
		if (w.t && !rc)
			rc = s->ops->commit(w.t);
		else if (w.t)
			s->ops->abort(w.t);
		w.t = NULL;
		w.n = 0;
		if (!rc && w.deleted == 0)
			break;
		if (rc && rc != MFS_ERETRY)
			return rc;
		rc = rc ? rc : -EAGAIN; /* not yet seen empty */
	}
	if (rc)
		return rc;
	struct store_txn *t;
	rc = s->ops->begin(s, &t);
	if (!rc) {
		rc = s->ops->inode_put(t, &l->root0);
		if (rc)
			s->ops->abort(t);
		else
			rc = s->ops->commit(t);
	}
	if (!rc && l->sb_written && (rc = s->ops->super_put(s, &l->sb0)) == 0)
		l->v->sb = l->sb0;
	if (!rc)
		rc = s->ops->sync(s);
	return rc;
}

/* ---------------------------------------------------------------- the load */

static int read_dump(struct loader *l, FILE *in)
{
	char *buf = NULL;
	size_t cap = 0;
	int rc = 0;
	for (;;) {
		errno = 0;
		ssize_t n = getline(&buf, &cap, in);
		if (n < 0) {
			if (ferror(in))
				rc = sfail(l, -EIO, "%s: cannot read: %s", l->src, strerror(errno ? errno : EIO));
			break;
		}
		l->line++;
		l->bytes += (uint64_t)n;
		if (stopping) {
			rc = sfail(l, -EINTR, "interrupted at line %llu of %s", (unsigned long long)l->line, l->src);
			break;
		}
		if (l->end) {
			rc = lfail(l, "more after the end record: not one whole dump");
			break;
		}
		if (buf[n - 1] != '\n') {
			rc = lfail(l, "the file ends inside this line: the dump is cut short");
			break;
		}
		if ((size_t)n > LINE_MAX_BYTES) {
			rc = lfail(l, "a line of %zd bytes, longer than any record", n);
			break;
		}
		bool is_end;
		rc = parse_line(l, buf, (size_t)n - 1, &is_end);
		if (!rc && !is_end && EVP_DigestUpdate(l->sha, buf, (size_t)n) != 1)
			rc = sfail(l, -EIO, "SHA-256 failed");
		if (!rc && (l->nbatch >= BATCH_RECORDS || l->batch_bytes >= BATCH_BYTES))
			rc = flush(l);
		if (rc)
			break;
		load_progress(l, false);
	}
	free(buf);
	if (rc)
		return rc;
	if (!l->line)
		return sfail(l, -EINVAL, "%s is empty: not a metafs dump", l->src);
	if (!l->end)
		return sfail(l, -EINVAL,
			     "%s ends after line %llu without the dump's end record: the dump is cut short "
			     "(was it interrupted?)",
			     l->src, (unsigned long long)l->line);
	rc = flush(l);
	if (!rc && !known(l, MFS_ROOT_INO))
		rc = sfail(l, -EINVAL, "%s holds no root directory (inode %d)", l->src, MFS_ROOT_INO);
	return rc;
}

/* Everything is in: the superblock, the allocator's floor, made durable. */
static int finish(struct loader *l, bool new_uuid)
{
	struct store *s = l->s;
	uint64_t floor = l->floor, top = l->inos[l->ninos - 1].ino;
	if (floor <= top)
		floor = top + 1; /* a dump made by hand, or of a damaged volume */
	uint64_t got;
	int rc = s->ops->ino_floor(s, floor, &got);
	if (!rc && got < floor)
		rc = -EIO;
	if (rc)
		return sfail(l, rc, "cannot raise the inode allocator above %llu: %s", (unsigned long long)floor,
			     strerror(-rc));
	struct superblock sb = l->sb;
	if (new_uuid)
		memcpy(sb.uuid, l->sb0.uuid, sizeof sb.uuid);
	l->sb_written = true;
	rc = s->ops->super_put(s, &sb);
	if (!rc)
		rc = s->ops->sync(s);
	if (rc)
		return sfail(l, rc, "cannot write the superblock: %s", strerror(-rc));
	l->v->sb = sb;
	return 0;
}

static void index_progress(void *arg, uint64_t done, uint64_t total)
{
	struct progress_line *p = arg;
	progress_show(p, done == total, "indexing: %llu/%llu inodes", (unsigned long long)done,
		      (unsigned long long)total);
}

static const char usage_load[] =
	"usage: metafs load VOLUME [-i FILE] [--json] [--no-index] [--new-uuid]\n"
	"  Fills VOLUME, freshly formatted (metafs format VOLUME) and not mounted,\n"
	"  from a dump made by `metafs dump` (read from stdin, or FILE): every inode\n"
	"  keeps its number, version, times and cookies; the volume takes the\n"
	"  dump's uuid, inline threshold and chunk size. A volume that holds\n"
	"  anything is refused. A dump that is malformed, cut short or altered is\n"
	"  refused with the line at fault, and whatever was written is removed\n"
	"  again: VOLUME is left as it was. The changelog starts empty; the search\n"
	"  index is rebuilt from the loaded metadata.\n"
	"  -i FILE     read the dump from FILE\n"
	"  --json      a JSON summary at the end\n"
	"  --no-index  leave the search index to the first mount or metafs reindex\n"
	"  --new-uuid  keep VOLUME's own uuid (a copy beside the original, not a move)\n"
	"  exit status: 0 loaded; 1 the load failed (VOLUME is as it was); 2 usage or\n"
	"  open errors, or VOLUME is not empty\n";

int cmd_load(int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "input", required_argument, NULL, 'i' },
		{ "json", no_argument, NULL, 'j' },
		{ "no-index", no_argument, NULL, 'n' },
		{ "new-uuid", no_argument, NULL, 'u' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	const char *inpath = NULL;
	bool json = false, no_index = false, new_uuid = false;
	int status = 1; /* until the load is whole */
	int c;
	optind = 1;
	while ((c = getopt_long(argc, argv, "hi:", longopts, NULL)) != -1) {
		switch (c) {
		case 'i': inpath = optarg; break;
		case 'j': json = true; break;
		case 'n': no_index = true; break;
		case 'u': new_uuid = true; break;
		case 'h': fputs(usage_load, stdout); return 0;
		default: return 2;
		}
	}
	if (optind != argc - 1) {
		die_msg("usage: metafs load VOLUME [-i FILE] [--json] [--no-index] [--new-uuid]");
		return 2;
	}
	const char *vol = argv[optind];
	if (inpath && !strcmp(inpath, "-"))
		inpath = NULL;
	if (!inpath && isatty(STDIN_FILENO)) {
		die_msg("load reads the dump from stdin, which is a terminal: give -i FILE, or pipe it in");
		return 2;
	}
	FILE *in = inpath ? fopen(inpath, "r") : stdin;
	if (!in) {
		die_msg("%s: %s", inpath, strerror(errno));
		return 2;
	}
	char err[1024] = "";
	struct mfs_volume *v;
	int rc = mfs_open(vol, 0, &v, err, sizeof err);
	if (rc == -EBUSY) {
		die_msg("%s is mounted or in use by another metafs process: unmount it first (load needs it to "
			"itself)",
			vol);
		goto fail_open;
	}
	if (rc) {
		die_msg("%s", err);
		goto fail_open;
	}
	struct loader l = { .v = v, .s = v->store, .vol = vol, .src = inpath ? inpath : "stdin",
			    .sha = EVP_MD_CTX_new() };
	uint64_t writers = 0;
	rc = v->store->ops->writers(v->store, &writers);
	if (rc || writers) {
		if (rc)
			die_msg("%s: cannot tell whether it is mounted: %s", vol, strerror(-rc));
		else
			die_msg("%s is mounted (%llu live mount session%s): unmount it everywhere first", vol,
				(unsigned long long)writers, writers == 1 ? "" : "s");
		goto fail_volume;
	}
	struct probe p;
	rc = check_empty(&l, &p);
	if (rc) {
		die_msg("%s: cannot read the volume: %s", vol, strerror(-rc));
		goto fail_volume;
	}
	if (p.what[0]) {
		die_msg("%s is not empty (it holds %s): load fills a freshly formatted volume only "
			"(metafs format NEWVOLUME); nothing was changed",
			vol, p.what);
		goto fail_volume;
	}
	struct stat st;
	if (fstat(fileno(in), &st) == 0 && S_ISREG(st.st_mode))
		l.total_bytes = (uint64_t)st.st_size;
	l.pl.tty = isatty(STDERR_FILENO);
	struct sigaction sa = { .sa_handler = on_signal };
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	int64_t t0 = mfs_now_ns();
	rc = l.sha && EVP_DigestInit_ex(l.sha, EVP_sha256(), NULL) == 1 ? 0 : sfail(&l, -ENOMEM, "SHA-256 failed");
	if (!rc)
		rc = read_dump(&l, in);
	if (!rc)
		rc = finish(&l, new_uuid);
	load_progress(&l, true);
	progress_clear(&l.pl);
	for (size_t i = 0; i < l.nbatch; i++)
		rec_free(&l.batch[i]);
	l.nbatch = 0;
	if (rc) {
		if (!l.err[0])
			sfail(&l, rc, "%s", strerror(-rc));
		int wrc = wipe(&l);
		if (wrc)
			die_msg("%s; and removing what was loaded into %s failed too (%s): format it anew before "
				"loading again",
				l.err, vol, wrc == -EAGAIN ? "records were still there after six passes" : strerror(-wrc));
		else
			die_msg("%s; nothing was loaded: %s is as it was", l.err, vol);
		goto fail_loader;
	}
	double secs = (double)(mfs_now_ns() - t0) / 1e9;
	/* the index is derived data: built from what was loaded, its cursor
	 * at the (empty) changelog's end */
	const char *index = "left to the first mount or metafs reindex";
	double isecs = 0;
	if (!no_index) {
		char ipath[PATH_MAX];
		indexer_default_path(vol, ipath, sizeof ipath);
		int64_t i0 = mfs_now_ns();
		int irc = indexer_rebuild(v, ipath, index_progress, &l.pl);
		progress_clear(&l.pl);
		isecs = (double)(mfs_now_ns() - i0) / 1e9;
		if (irc) {
			die_msg("%s: loaded, but the search index could not be built (%s): run metafs reindex %s",
				vol, strerror(-irc), vol);
			index = "failed";
		} else {
			index = "rebuilt";
		}
	}
	if (json) {
		json_t *o = json_object();
		json_object_set_new(o, "volume", json_string(vol));
		json_object_set_new(o, "input", json_string(l.src));
		json_t *cnt = json_object();
		for (int k = 0; k < DK_COUNT; k++)
			json_object_set_new(cnt, dump_count_keys[k], dump_u64(l.n[k]));
		json_object_set_new(o, "records", cnt);
		json_object_set_new(o, "content_bytes", dump_u64(l.data_bytes));
		json_object_set_new(o, "dump_bytes", dump_u64(l.bytes));
		json_object_set_new(o, "seconds", json_real(secs));
		json_object_set_new(o, "index", json_string(index));
		json_object_set_new(o, "index_seconds", json_real(isecs));
		char *s = json_dumps(o, JSON_COMPACT | JSON_PRESERVE_ORDER | JSON_REAL_PRECISION(6));
		printf("%s\n", s ? s : "{}");
		free(s);
		json_decref(o);
	} else {
		printf("loaded %s: %llu inodes, %llu entries, %llu xattrs, %llu inline and %llu chunk records "
		       "(%llu bytes of content), %llu provenance records in %.1f s; search index %s\n",
		       vol, (unsigned long long)l.n[DK_INODE], (unsigned long long)l.n[DK_DIRENT],
		       (unsigned long long)l.n[DK_XATTR], (unsigned long long)l.n[DK_INLINE],
		       (unsigned long long)l.n[DK_CHUNK], (unsigned long long)l.data_bytes,
		       (unsigned long long)l.n[DK_PROV], secs, index);
	}
	status = 0;
fail_loader:
	free(l.batch);
	free(l.inos);
	EVP_MD_CTX_free(l.sha);
	mfs_close(v);
	if (inpath)
		fclose(in);
	return status;
fail_volume:
	EVP_MD_CTX_free(l.sha);
	mfs_close(v);
fail_open:
	if (inpath)
		fclose(in);
	return 2;
}
