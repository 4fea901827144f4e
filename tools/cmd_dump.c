/* SPDX-License-Identifier: Apache-2.0 */
/*
 * metafs dump: a whole volume as JSON lines, to load it into another store
 * (an embedded directory and a cluster database, either way) with metafs
 * load (cmd_load.c), or to keep it.
 *
 * The format, version 1: one JSON object a line, in this order
 *   {"format":"metafs-dump","version":1,"superblock":{"format_version":1,
 *    "uuid":"…","inline_threshold":N,"chunk_size":N,"created_ns":N},
 *    "ino_floor":N}
 *   {"t":"inode","ino":N,"mode":N,"nlink":N,"uid":N,"gid":N,"rdev":N,"size":N,
 *    "flags":N,"version":N,"parent":N,"next_cookie":N,"atime":[s,ns],
 *    "mtime":[s,ns],"ctime":[s,ns],"btime":[s,ns]}     ascending by ino
 *   {"t":"dirent","parent":N,"name":…,"ino":N,"type":N,"cookie":N}
 *                                                  by (parent, name bytes)
 *   {"t":"xattr","ino":N,"name":…,"value":…}        by (ino, name bytes)
 *   {"t":"inline","ino":N,"data":"<base64>"}
 *   {"t":"chunk","ino":N,"idx":N,"data":"<base64>"} by ino, then chunk index
 *   {"t":"prov","key":"<base64>","value":"<base64>"} by key bytes
 *   {"t":"end","inodes":N,"dirents":N,"xattrs":N,"inline":N,"chunks":N,
 *    "prov":N,"sha256":"<hex of every byte before this line>"}
 * A name or an xattr value that is UTF-8 without NUL bytes is a JSON
 * string; other bytes go base64 under "name_base64" / "value_base64".
 * Numbers above INT64_MAX would be decimal strings. File contents are the
 * payloads the reader sees (the store's checksum framing is verified here
 * and made anew by load); a missing chunk is a hole, as in the store.
 * The order, and so the bytes, depend only on the volume's content: a
 * volume dumped, loaded into any store and dumped again gives the same
 * file.
 *
 * ino_floor is the inode allocator's position: every number handed out
 * (inodes, deleted ones included, and provenance processes) is below it, so
 * the loaded volume never hands out a number that lineage records name.
 *
 * Not carried, on purpose:
 *   the changelog: it is the source's history, numbered by the source
 *     (consumers' cursors mean nothing elsewhere), and no store takes
 *     records with chosen numbers. Nothing needs it: lineage reads the
 *     provenance records, which are carried, and the search index is
 *     derived data that load rebuilds from the metadata. The loaded
 *     volume's changelog starts empty.
 *   orphans: inodes with no name left (open-unlinked at a crash), with
 *     their xattrs and data; a mount or fsck would reclaim them anyway.
 *   the search index and search.conf, which belong to the volume's local
 *     directory, not to its metadata.
 *
 * A dump reads one consistent state: an embedded volume is opened for
 * writing, which its lock refuses while it is mounted; a cluster volume is
 * refused while any mount's session is alive (its tables are read page by
 * page, and would not be one state while they change).
 */
#include "tools.h"
#include "blockstore.h"
#include "metadata.h"
#include "common.h"

#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <jansson.h>
#include <limits.h>
#include <openssl/evp.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* ---------------------------------------------------------------- shared with load */

const char *const dump_kind_names[DK_COUNT] = { "inode", "dirent", "xattr", "inline", "chunk", "prov" };
const char *const dump_count_keys[DK_COUNT] = { "inodes", "dirents", "xattrs", "inline", "chunks", "prov" };

json_t *dump_u64(uint64_t v)
{
	if (v <= INT64_MAX)
		return json_integer((json_int_t)v);
	char b[24];
	snprintf(b, sizeof b, "%llu", (unsigned long long)v);
	return json_string(b);
}

bool dump_get_u64(json_t *o, const char *key, uint64_t *out)
{
	json_t *v = json_object_get(o, key);
	if (json_is_integer(v)) {
		json_int_t i = json_integer_value(v);
		if (i < 0)
			return false;
		*out = (uint64_t)i;
		return true;
	}
	const char *s = json_string_value(v);
	if (!s || !*s || *s == '-' || *s == '+')
		return false;
	char *end;
	errno = 0;
	unsigned long long x = strtoull(s, &end, 10);
	if (errno || *end)
		return false;
	*out = x;
	return true;
}

static size_t b64_len(size_t n)
{
	return 4 * ((n + 2) / 3);
}

int dump_set_bytes(json_t *o, const char *key, const void *p, size_t n)
{
	/* json_stringn refuses what is not UTF-8 */
	json_t *s = memchr(p, 0, n) ? NULL : json_stringn(p, n);
	if (s)
		return json_object_set_new(o, key, s) ? -ENOMEM : 0;
	if (n > INT_MAX / 2)
		return -EFBIG;
	char *b = malloc(b64_len(n) + 1);
	if (!b)
		return -ENOMEM;
	EVP_EncodeBlock((unsigned char *)b, p, (int)n);
	char k[64];
	snprintf(k, sizeof k, "%s_base64", key);
	int rc = json_object_set_new(o, k, json_string(b)) ? -ENOMEM : 0;
	free(b);
	return rc;
}

/* 0..63 for the base64 alphabet, 64 for anything else */
static unsigned char b64_table[256];
static pthread_once_t b64_once = PTHREAD_ONCE_INIT;

static void b64_table_init(void)
{
	static const char alphabet[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
	memset(b64_table, 64, sizeof b64_table);
	for (int i = 0; i < 64; i++)
		b64_table[(unsigned char)alphabet[i]] = (unsigned char)i;
}

int dump_b64_decode(const char *s, size_t len, unsigned char **out, size_t *outlen)
{
	pthread_once(&b64_once, b64_table_init);
	if (len % 4)
		return -EINVAL;
	size_t pad = 0;
	if (len && s[len - 1] == '=')
		pad = len >= 2 && s[len - 2] == '=' ? 2 : 1;
	size_t n = len / 4 * 3 - pad;
	unsigned char *o = malloc(n + 1);
	if (!o)
		return -ENOMEM;
	const unsigned char *p = (const unsigned char *)s;
	size_t full = pad ? len - 4 : len, k = 0;
	unsigned char bad = 0;
	/* the groups without padding: a table lookup each, errors or'd
	 * together and looked at once (this loop is most of a load's time) */
	for (size_t i = 0; i < full; i += 4, k += 3) {
		unsigned char a = b64_table[p[i]], b = b64_table[p[i + 1]], c = b64_table[p[i + 2]],
			      d = b64_table[p[i + 3]];
		bad |= a | b | c | d;
		uint32_t w = (uint32_t)a << 18 | (uint32_t)b << 12 | (uint32_t)c << 6 | d;
		o[k] = (unsigned char)(w >> 16);
		o[k + 1] = (unsigned char)(w >> 8);
		o[k + 2] = (unsigned char)w;
	}
	if (pad) {
		const unsigned char *q = p + full;
		unsigned char a = b64_table[q[0]], b = b64_table[q[1]], c = pad == 1 ? b64_table[q[2]] : 0;
		bad |= a | b | c;
		uint32_t w = (uint32_t)a << 18 | (uint32_t)b << 12 | (uint32_t)c << 6;
		o[k++] = (unsigned char)(w >> 16);
		if (pad == 1)
			o[k++] = (unsigned char)(w >> 8);
	}
	if (bad & 64) {
		free(o);
		return -EINVAL;
	}
	o[n] = 0;
	*out = o;
	*outlen = n;
	return 0;
}

int dump_get_bytes(json_t *o, const char *key, unsigned char **out, size_t *len)
{
	json_t *v = json_object_get(o, key);
	if (v) {
		if (!json_is_string(v))
			return -EINVAL;
		size_t n = json_string_length(v);
		unsigned char *p = malloc(n + 1);
		if (!p)
			return -ENOMEM;
		memcpy(p, json_string_value(v), n);
		p[n] = 0;
		*out = p;
		*len = n;
		return 0;
	}
	char k[64];
	snprintf(k, sizeof k, "%s_base64", key);
	v = json_object_get(o, k);
	if (!v)
		return -ENOENT;
	if (!json_is_string(v))
		return -EINVAL;
	return dump_b64_decode(json_string_value(v), json_string_length(v), out, len);
}

void dump_uuid_text(const unsigned char u[16], char out[37])
{
	snprintf(out, 37, "%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-%02x%02x%02x%02x%02x%02x", u[0], u[1], u[2],
		 u[3], u[4], u[5], u[6], u[7], u[8], u[9], u[10], u[11], u[12], u[13], u[14], u[15]);
}

int dump_uuid_parse(const char *s, unsigned char u[16])
{
	if (!s || strlen(s) != 36)
		return -EINVAL;
	size_t k = 0;
	for (size_t i = 0; i < 36;) {
		if (i == 8 || i == 13 || i == 18 || i == 23) {
			if (s[i] != '-')
				return -EINVAL;
			i++;
			continue;
		}
		int hi = s[i], lo = s[i + 1];
		char pair[3] = { (char)hi, (char)lo, 0 };
		char *end;
		if (!((hi >= '0' && hi <= '9') || (hi >= 'a' && hi <= 'f')) ||
		    !((lo >= '0' && lo <= '9') || (lo >= 'a' && lo <= 'f')))
			return -EINVAL;
		u[k++] = (unsigned char)strtoul(pair, &end, 16);
		i += 2;
	}
	return k == 16 ? 0 : -EINVAL;
}

void progress_show(struct progress_line *p, bool force, const char *fmt, ...)
{
	if (!p->tty)
		return;
	int64_t now = mfs_now_ns();
	if (!force && now - p->last_ns < 100000000)
		return; /* ten updates a second at most */
	p->last_ns = now;
	va_list ap;
	va_start(ap, fmt);
	fputs("\r\033[K", stderr);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	p->shown = true;
}

void progress_clear(struct progress_line *p)
{
	if (p->shown) {
		fputs("\r\033[K", stderr);
		p->shown = false;
	}
}

/* ---------------------------------------------------------------- dump */

static volatile sig_atomic_t stopping;

static void on_signal(int sig)
{
	stopping = 1;
}

struct dumper {
	struct mfs_volume *v;
	FILE *out;
	EVP_MD_CTX *sha;
	uint64_t bytes, data_bytes;
	uint64_t n[DK_COUNT];
	struct u64_vec inos; /* the inodes dumped, ascending */
	struct u64_vec files; /* ino << 1 | chunked: files and symlinks, whose content follows */
	char *b64;
	size_t b64cap;
	struct store_txn *t; /* reads the contents and the provenance records */
	/* the last provenance key written, for a scan resumed after a retry */
	unsigned char prov_last[PROV_KEY_MAX];
	size_t prov_last_len;
	bool prov_have;
	struct progress_line pl;
	const char *phase;
	char err[1024];
};

/* Keeps the first message; returns rc. */
static int __attribute__((format(printf, 3, 4))) dfail(struct dumper *d, int rc, const char *fmt, ...)
{
	if (!d->err[0]) {
		va_list ap;
		va_start(ap, fmt);
		vsnprintf(d->err, sizeof d->err, fmt, ap);
		va_end(ap);
	}
	return rc;
}

static void dump_progress(struct dumper *d, bool force)
{
	uint64_t recs = 0;
	for (int i = 0; i < DK_COUNT; i++)
		recs += d->n[i];
	progress_show(&d->pl, force, "dump: %s, %llu records, %.1f MB written", d->phase, (unsigned long long)recs,
		      (double)d->bytes / 1e6);
}

static int emit(struct dumper *d, const void *p, size_t n)
{
	errno = 0;
	if (n && fwrite(p, 1, n, d->out) != n)
		return dfail(d, -EIO, "cannot write the dump: %s", strerror(errno ? errno : EIO));
	if (EVP_DigestUpdate(d->sha, p, n) != 1)
		return dfail(d, -EIO, "SHA-256 failed");
	d->bytes += n;
	return 0;
}

/* One record: counted, and checked for an interrupt. */
static int emit_json(struct dumper *d, json_t *o, int kind)
{
	if (stopping) {
		json_decref(o);
		return dfail(d, -EINTR, "interrupted");
	}
	char *s = o ? json_dumps(o, JSON_COMPACT | JSON_PRESERVE_ORDER) : NULL;
	json_decref(o);
	if (!s)
		return dfail(d, -ENOMEM, "out of memory");
	int rc = emit(d, s, strlen(s));
	free(s);
	if (!rc)
		rc = emit(d, "\n", 1);
	if (!rc && kind >= 0) {
		d->n[kind]++;
		dump_progress(d, false);
	}
	return rc;
}

static bool dumped(const struct dumper *d, uint64_t ino)
{
	size_t lo = 0, hi = d->inos.n;
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		if (d->inos.v[mid] < ino)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo < d->inos.n && d->inos.v[lo] == ino;
}

static json_t *ts_json(struct timespec ts)
{
	return json_pack("[II]", (json_int_t)ts.tv_sec, (json_int_t)ts.tv_nsec);
}

static int dump_header(struct dumper *d)
{
	uint64_t floor;
	struct store *s = d->v->store;
	int rc = s->ops->ino_floor(s, 0, &floor);
	if (rc)
		return dfail(d, rc, "cannot read the inode allocator's position: %s", strerror(-rc));
	char uuid[37];
	dump_uuid_text(d->v->sb.uuid, uuid);
	const struct superblock *sb = &d->v->sb;
	json_t *o = json_object();
	json_object_set_new(o, "format", json_string(DUMP_FORMAT));
	json_object_set_new(o, "version", json_integer(DUMP_VERSION));
	json_t *j = json_object();
	json_object_set_new(j, "format_version", json_integer(sb->format_version));
	json_object_set_new(j, "uuid", json_string(uuid));
	json_object_set_new(j, "inline_threshold", json_integer(sb->inline_threshold));
	json_object_set_new(j, "chunk_size", json_integer(sb->chunk_size));
	json_object_set_new(j, "created_ns", json_integer(sb->created_ns));
	json_object_set_new(o, "superblock", j);
	json_object_set_new(o, "ino_floor", dump_u64(floor));
	return emit_json(d, o, -1);
}

static int dump_inode(void *arg, uint64_t ino, const struct inode_rec *in)
{
	struct dumper *d = arg;
	if (!in || in->ino != ino)
		return dfail(d, -EIO, "the record of inode %llu does not decode: the volume is damaged "
				      "(metafs fsck says more)",
			     (unsigned long long)ino);
	if (in->nlink == 0)
		return 0; /* an orphan: not carried */
	json_t *o = json_object();
	json_object_set_new(o, "t", json_string("inode"));
	json_object_set_new(o, "ino", dump_u64(ino));
	json_object_set_new(o, "mode", json_integer(in->mode));
	json_object_set_new(o, "nlink", json_integer(in->nlink));
	json_object_set_new(o, "uid", json_integer(in->uid));
	json_object_set_new(o, "gid", json_integer(in->gid));
	json_object_set_new(o, "rdev", dump_u64(in->rdev));
	json_object_set_new(o, "size", dump_u64(in->size));
	json_object_set_new(o, "flags", json_integer(in->flags));
	json_object_set_new(o, "version", dump_u64(in->version));
	json_object_set_new(o, "parent", dump_u64(in->parent));
	json_object_set_new(o, "next_cookie", dump_u64(in->next_cookie));
	json_object_set_new(o, "atime", ts_json(in->atime));
	json_object_set_new(o, "mtime", ts_json(in->mtime));
	json_object_set_new(o, "ctime", ts_json(in->ctime));
	json_object_set_new(o, "btime", ts_json(in->btime));
	int rc = emit_json(d, o, DK_INODE);
	if (!rc)
		rc = u64_vec_push(&d->inos, ino);
	if (!rc && (S_ISREG(in->mode) || S_ISLNK(in->mode)))
		rc = u64_vec_push(&d->files, ino << 1 | ((in->flags & INODE_F_CHUNKED) ? 1 : 0));
	return rc;
}

static int dump_dirent(void *arg, uint64_t parent, const char *name, size_t len, const struct dirent_rec *de)
{
	struct dumper *d = arg;
	if (!de)
		return dfail(d, -EIO, "an entry of directory %llu does not decode: the volume is damaged "
				      "(metafs fsck says more)",
			     (unsigned long long)parent);
	if (!dumped(d, parent))
		return dfail(d, -EIO, "directory %llu, which holds the entry '%.*s', does not exist: the volume is "
				      "damaged (metafs fsck --repair mends it)",
			     (unsigned long long)parent, (int)len, name);
	if (!dumped(d, de->ino))
		return dfail(d, -EIO, "the entry '%.*s' of directory %llu names inode %llu, which does not exist: "
				      "the volume is damaged (metafs fsck --repair mends it)",
			     (int)len, name, (unsigned long long)parent, (unsigned long long)de->ino);
	json_t *o = json_object();
	json_object_set_new(o, "t", json_string("dirent"));
	json_object_set_new(o, "parent", dump_u64(parent));
	int rc = dump_set_bytes(o, "name", name, len);
	json_object_set_new(o, "ino", dump_u64(de->ino));
	json_object_set_new(o, "type", json_integer(de->type));
	json_object_set_new(o, "cookie", dump_u64(de->cookie));
	if (rc) {
		json_decref(o);
		return dfail(d, rc, "out of memory");
	}
	return emit_json(d, o, DK_DIRENT);
}

static int dump_xattr(void *arg, uint64_t ino, const char *name, size_t len, const void *val, size_t vlen)
{
	struct dumper *d = arg;
	if (!dumped(d, ino))
		return 0; /* of an orphan (or left by damage fsck reports): not carried */
	json_t *o = json_object();
	json_object_set_new(o, "t", json_string("xattr"));
	json_object_set_new(o, "ino", dump_u64(ino));
	int rc = dump_set_bytes(o, "name", name, len);
	if (!rc)
		rc = dump_set_bytes(o, "value", val, vlen);
	if (rc) {
		json_decref(o);
		return dfail(d, rc, "out of memory");
	}
	return emit_json(d, o, DK_XATTR);
}

/* A number as dump_u64 writes it, as JSON text. */
static void u64_text(char *b, size_t len, uint64_t v)
{
	snprintf(b, len, v <= INT64_MAX ? "%llu" : "\"%llu\"", (unsigned long long)v);
}

/* A content line, written by hand: a chunk's base64 is the bulk of a dump,
 * and needs no escaping, so it is not copied through a JSON value. */
static int emit_data(struct dumper *d, bool chunk, uint64_t ino, uint64_t idx, const void *p, size_t n)
{
	if (stopping)
		return dfail(d, -EINTR, "interrupted");
	char head[128], a[24], b[24];
	u64_text(a, sizeof a, ino);
	u64_text(b, sizeof b, idx);
	if (chunk)
		snprintf(head, sizeof head, "{\"t\":\"chunk\",\"ino\":%s,\"idx\":%s,\"data\":\"", a, b);
	else
		snprintf(head, sizeof head, "{\"t\":\"inline\",\"ino\":%s,\"data\":\"", a);
	size_t need = b64_len(n) + 1;
	if (need > d->b64cap) {
		char *nb = realloc(d->b64, need);
		if (!nb)
			return dfail(d, -ENOMEM, "out of memory");
		d->b64 = nb;
		d->b64cap = need;
	}
	int blen = EVP_EncodeBlock((unsigned char *)d->b64, p, (int)n);
	int rc = emit(d, head, strlen(head));
	if (!rc)
		rc = emit(d, d->b64, (size_t)blen);
	if (!rc)
		rc = emit(d, "\"}\n", 3);
	if (!rc) {
		d->n[chunk ? DK_CHUNK : DK_INLINE]++;
		d->data_bytes += n;
		dump_progress(d, false);
	}
	return rc;
}

/* Runs fn in d's read transaction, again in a new one when the store asks
 * for a retry (a cluster connection lost): fn must not have written any
 * line when it fails that way. */
static int with_retry(struct dumper *d, int (*fn)(struct dumper *d, void *arg), void *arg)
{
	struct store *s = d->v->store;
	unsigned backoff = 10000;
	for (int attempt = 0;; attempt++) {
		int rc = d->t ? 0 : s->ops->begin_read(s, &d->t);
		if (!rc)
			rc = fn(d, arg);
		if (rc != MFS_ERETRY || attempt == 40)
			return rc;
		s->ops->abort(d->t);
		d->t = NULL;
		mfs_sleep_us(backoff);
		if (backoff < 1000000)
			backoff *= 2;
	}
}

struct content {
	uint64_t ino, idx;
	struct u64_vec idxs;
};

static int read_inline(struct dumper *d, void *arg)
{
	struct content *c = arg;
	void *rec;
	size_t len;
	int rc = d->v->store->ops->inline_get(d->t, c->ino, &rec, &len);
	if (rc == -ENOENT)
		return 0; /* nothing stored: the file reads as zeros, and so will the copy */
	if (rc)
		return rc;
	const void *payload;
	size_t plen;
	if (bs_unframe(rec, len, &payload, &plen)) {
		free(rec);
		return dfail(d, -EIO, "the content of inode %llu fails its checksum: the volume is damaged "
				      "(metafs fsck --scrub says more)",
			     (unsigned long long)c->ino);
	}
	rc = emit_data(d, false, c->ino, 0, payload, plen);
	free(rec);
	return rc;
}

static int list_chunks(struct dumper *d, void *arg)
{
	struct content *c = arg;
	c->idxs.n = 0;
	return d->v->store->ops->chunk_list(d->t, c->ino, 0, u64_vec_collect, &c->idxs);
}

struct chunk_view {
	struct dumper *d;
	struct content *c;
};

static int chunk_seen(void *arg, const void *rec, size_t len)
{
	struct chunk_view *cv = arg;
	const void *payload;
	size_t plen;
	if (bs_unframe(rec, len, &payload, &plen))
		return dfail(cv->d, -EIO, "chunk %llu of inode %llu fails its checksum: the volume is damaged "
					  "(metafs fsck --scrub says more)",
			     (unsigned long long)cv->c->idx, (unsigned long long)cv->c->ino);
	return emit_data(cv->d, true, cv->c->ino, cv->c->idx, payload, plen);
}

static int read_chunk(struct dumper *d, void *arg)
{
	struct chunk_view cv = { d, arg };
	int rc = d->v->store->ops->chunk_view(d->t, cv.c->ino, cv.c->idx, chunk_seen, &cv);
	return rc == -ENOENT ? 0 : rc; /* gone since it was listed: cannot be, the volume is ours */
}

/* File contents, file by file in inode order: the same order whichever
 * store holds them (a whole-store data scan lists them in the store's own
 * order), and only the records a read of the file would use. */
static int dump_contents(struct dumper *d)
{
	struct content c = { 0 };
	int rc = 0;
	for (size_t i = 0; i < d->files.n && !rc; i++) {
		c.ino = d->files.v[i] >> 1;
		if (!(d->files.v[i] & 1)) {
			rc = with_retry(d, read_inline, &c);
			continue;
		}
		rc = with_retry(d, list_chunks, &c);
		for (size_t k = 0; k < c.idxs.n && !rc; k++) {
			c.idx = c.idxs.v[k];
			rc = with_retry(d, read_chunk, &c);
		}
	}
	free(c.idxs.v);
	return rc;
}

static int prov_key_cmp(const unsigned char *a, size_t alen, const unsigned char *b, size_t blen)
{
	int c = memcmp(a, b, alen < blen ? alen : blen);
	return c ? c : (alen > blen) - (alen < blen);
}

static int dump_prov_rec(void *arg, const void *key, size_t klen, const void *val, size_t vlen)
{
	struct dumper *d = arg;
	if (klen == 0 || klen > PROV_KEY_MAX)
		return dfail(d, -EIO, "a provenance record has a key of %zu bytes: the volume is damaged", klen);
	/* a scan resumed from the start after a retry skips what it wrote */
	if (d->prov_have && prov_key_cmp(key, klen, d->prov_last, d->prov_last_len) <= 0)
		return 0;
	json_t *o = json_object();
	json_object_set_new(o, "t", json_string("prov"));
	size_t kb = b64_len(klen) + 1, vb = b64_len(vlen) + 1;
	char *k64 = malloc(kb), *v64 = vlen <= INT_MAX / 2 ? malloc(vb) : NULL;
	if (!k64 || !v64) {
		free(k64);
		free(v64);
		json_decref(o);
		return dfail(d, -ENOMEM, "out of memory");
	}
	EVP_EncodeBlock((unsigned char *)k64, key, (int)klen);
	EVP_EncodeBlock((unsigned char *)v64, val, (int)vlen);
	json_object_set_new(o, "key", json_string(k64));
	json_object_set_new(o, "value", json_string(v64));
	free(k64);
	free(v64);
	int rc = emit_json(d, o, DK_PROV);
	if (!rc) {
		memcpy(d->prov_last, key, klen);
		d->prov_last_len = klen;
		d->prov_have = true;
	}
	return rc;
}

static int scan_prov(struct dumper *d, void *arg)
{
	/* the empty prefix: the whole key space of the provenance records */
	return d->v->store->ops->prov_scan(d->t, "", 0, dump_prov_rec, d);
}

static int dump_end(struct dumper *d)
{
	unsigned char md[EVP_MAX_MD_SIZE];
	unsigned int mdlen = 0;
	if (EVP_DigestFinal_ex(d->sha, md, &mdlen) != 1)
		return dfail(d, -EIO, "SHA-256 failed");
	char hex[2 * EVP_MAX_MD_SIZE + 1];
	for (unsigned i = 0; i < mdlen; i++)
		snprintf(hex + 2 * i, 3, "%02x", md[i]);
	json_t *o = json_object();
	json_object_set_new(o, "t", json_string("end"));
	for (int i = 0; i < DK_COUNT; i++)
		json_object_set_new(o, dump_count_keys[i], dump_u64(d->n[i]));
	json_object_set_new(o, "sha256", json_string(hex));
	char *s = json_dumps(o, JSON_COMPACT | JSON_PRESERVE_ORDER);
	json_decref(o);
	if (!s)
		return dfail(d, -ENOMEM, "out of memory");
	/* the end line is not part of its own digest: written around it */
	bool ok = fputs(s, d->out) >= 0 && fputc('\n', d->out) != EOF;
	d->bytes += strlen(s) + 1;
	free(s);
	return ok ? 0 : dfail(d, -EIO, "cannot write the dump: %s", strerror(errno ? errno : EIO));
}

static int dump_all(struct dumper *d)
{
	struct store *s = d->v->store;
	int rc = dump_header(d);
	d->phase = "inodes";
	if (!rc)
		rc = s->ops->inode_scan(s, dump_inode, d);
	d->phase = "directory entries";
	if (!rc)
		rc = s->ops->dirent_scan(s, dump_dirent, d);
	d->phase = "xattrs";
	if (!rc)
		rc = s->ops->xattr_scan(s, dump_xattr, d);
	d->phase = "file contents";
	if (!rc)
		rc = dump_contents(d);
	d->phase = "provenance";
	if (!rc)
		rc = with_retry(d, scan_prov, NULL);
	if (!rc)
		rc = dump_end(d);
	if (d->t)
		s->ops->abort(d->t);
	d->t = NULL;
	if (rc && !d->err[0])
		dfail(d, rc, "cannot read the volume: %s", strerror(-rc));
	return rc;
}

static json_t *counts_json(const uint64_t n[DK_COUNT])
{
	json_t *o = json_object();
	for (int i = 0; i < DK_COUNT; i++)
		json_object_set_new(o, dump_count_keys[i], dump_u64(n[i]));
	return o;
}

static const char usage_dump[] =
	"usage: metafs dump VOLUME [-o FILE] [--json]\n"
	"  Writes the whole volume as JSON lines (to stdout, or FILE, made mode 0600:\n"
	"  it holds every file's bytes): a header with the superblock, then every\n"
	"  inode, directory entry, xattr, file content and provenance record, then an\n"
	"  end record with the counts and a SHA-256, so a cut or damaged dump is\n"
	"  refused by `metafs load`. The changelog, orphans and the search index are\n"
	"  not carried (load rebuilds the index). VOLUME must not be mounted: a dump\n"
	"  is one consistent state of the volume.\n"
	"  -o FILE  write the dump to FILE, replaced only by a whole dump\n"
	"  --json   a JSON summary at the end (on stdout with -o, else on stderr)\n"
	"  exit status: 0 done; 1 the dump failed; 2 usage or open errors\n";

int cmd_dump(int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "output", required_argument, NULL, 'o' },
		{ "json", no_argument, NULL, 'j' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	const char *outpath = NULL;
	bool json = false;
	int c;
	optind = 1;
	while ((c = getopt_long(argc, argv, "ho:", longopts, NULL)) != -1) {
		switch (c) {
		case 'o': outpath = optarg; break;
		case 'j': json = true; break;
		case 'h': fputs(usage_dump, stdout); return 0;
		default: return 2;
		}
	}
	if (optind != argc - 1) {
		die_msg("usage: metafs dump VOLUME [-o FILE] [--json]");
		return 2;
	}
	const char *arg = argv[optind];
	char vol[PATH_MAX], mnt[PATH_MAX];
	if (strncmp(arg, "mysql://", 8) != 0 && access(arg, F_OK) != 0) {
		die_msg("%s: no such volume", arg);
		return 2;
	}
	if (resolve_target(arg, vol, sizeof vol, mnt, sizeof mnt))
		return 2;
	if (mnt[0]) {
		die_msg("%s is inside the metafs mounted at %s (volume %s): unmount it, then dump %s "
			"(a dump must see one consistent state, which it cannot while the volume changes)",
			arg, mnt, vol, vol);
		return 2;
	}
	bool cluster = !strncmp(vol, "mysql://", 8);
	char err[1024] = "";
	struct mfs_volume *v;
	/* an embedded volume opened for writing holds its lock: nothing else
	 * changes it while it is read; a cluster volume takes no such lock */
	int rc = mfs_open(vol, cluster ? STORE_OPEN_READONLY : 0, &v, err, sizeof err);
	if (rc == -EBUSY) {
		die_msg("%s is mounted or in use by another metafs process: unmount it first "
			"(a dump must see one consistent state, which it cannot while the volume changes)",
			vol);
		return 2;
	}
	if (rc) {
		die_msg("%s", err);
		return 2;
	}
	uint64_t writers = 0;
	rc = v->store->ops->writers(v->store, &writers);
	if (rc || writers) {
		if (rc)
			die_msg("%s: cannot tell whether it is mounted: %s", vol, strerror(-rc));
		else
			die_msg("%s is mounted (%llu live mount session%s): unmount it everywhere first "
				"(a dump must see one consistent state, which it cannot while the volume changes)",
				vol, (unsigned long long)writers, writers == 1 ? "" : "s");
		mfs_close(v);
		return 2;
	}
	/* A file is written under a name of its own beside FILE and renamed
	 * over it when whole: a failed dump leaves no partial file, and an
	 * earlier dump at FILE stays. A device or a pipe is written as it is. */
	FILE *out = stdout;
	char tmp[PATH_MAX + 32] = "";
	if (outpath) {
		struct stat st;
		int fd;
		if (stat(outpath, &st) == 0 && !S_ISREG(st.st_mode)) {
			fd = open(outpath, O_WRONLY | O_CLOEXEC);
		} else {
			snprintf(tmp, sizeof tmp, "%s.partial.%d", outpath, (int)getpid());
			fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
		}
		if (fd < 0 || !(out = fdopen(fd, "w"))) {
			die_msg("%s: cannot create the dump: %s", tmp[0] ? tmp : outpath, strerror(errno));
			if (fd >= 0)
				close(fd);
			mfs_close(v);
			return 2;
		}
	}
	struct dumper d = { .v = v, .out = out, .sha = EVP_MD_CTX_new(), .phase = "header" };
	/* a dump on the terminal would mix with the progress line */
	d.pl.tty = isatty(STDERR_FILENO) && !isatty(fileno(out));
	struct sigaction sa = { .sa_handler = on_signal };
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	int64_t t0 = mfs_now_ns();
	rc = d.sha && EVP_DigestInit_ex(d.sha, EVP_sha256(), NULL) == 1 ? 0 : dfail(&d, -ENOMEM, "SHA-256 failed");
	if (!rc)
		rc = dump_all(&d);
	if (!rc && fflush(out) != 0)
		rc = dfail(&d, -EIO, "cannot write the dump: %s", strerror(errno));
	if (!rc && tmp[0] && fsync(fileno(out)) != 0)
		rc = dfail(&d, -EIO, "cannot write the dump: %s", strerror(errno));
	if (outpath && fclose(out) != 0 && !rc)
		rc = dfail(&d, -EIO, "cannot write the dump: %s", strerror(errno));
	if (!rc && tmp[0] && rename(tmp, outpath) != 0)
		rc = dfail(&d, -EIO, "cannot put the dump in place as %s: %s", outpath, strerror(errno));
	double secs = (double)(mfs_now_ns() - t0) / 1e9;
	progress_clear(&d.pl);
	mfs_close(v);
	EVP_MD_CTX_free(d.sha);
	free(d.inos.v);
	free(d.files.v);
	free(d.b64);
	if (rc) {
		if (tmp[0] && unlink(tmp) == 0)
			die_msg("%s: %s; nothing was written to %s", vol, d.err, outpath);
		else
			die_msg("%s: %s%s", vol, d.err, outpath ? "" : " (the output lacks its end record: load refuses it)");
		return 1;
	}
	FILE *info = outpath ? stdout : stderr;
	if (json) {
		json_t *o = json_object();
		json_object_set_new(o, "volume", json_string(vol));
		json_object_set_new(o, "output", outpath ? json_string(outpath) : json_null());
		json_object_set_new(o, "records", counts_json(d.n));
		json_object_set_new(o, "content_bytes", dump_u64(d.data_bytes));
		json_object_set_new(o, "dump_bytes", dump_u64(d.bytes));
		json_object_set_new(o, "seconds", json_real(secs));
		char *s = json_dumps(o, JSON_COMPACT | JSON_PRESERVE_ORDER | JSON_REAL_PRECISION(6));
		fprintf(info, "%s\n", s ? s : "{}");
		free(s);
		json_decref(o);
	} else if (outpath || isatty(STDERR_FILENO)) {
		fprintf(info,
			"dumped %s: %llu inodes, %llu entries, %llu xattrs, %llu inline and %llu chunk records "
			"(%llu bytes of content), %llu provenance records; %llu bytes%s%s in %.1f s\n",
			vol, (unsigned long long)d.n[DK_INODE], (unsigned long long)d.n[DK_DIRENT],
			(unsigned long long)d.n[DK_XATTR], (unsigned long long)d.n[DK_INLINE],
			(unsigned long long)d.n[DK_CHUNK], (unsigned long long)d.data_bytes,
			(unsigned long long)d.n[DK_PROV], (unsigned long long)d.bytes, outpath ? " to " : "",
			outpath ? outpath : "", secs);
	}
	return 0;
}
