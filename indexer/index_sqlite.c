/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The embedded search backend: one SQLite database beside the volume.
 *
 *   docs   one row an inode: version and attributes
 *   names  one row a name: (parent, name) -> inode, with the full path,
 *          indexed by path so a subtree is one range scan
 *   attrs  typed fields from user.* xattrs: text values as str, JSON values
 *          flattened to dotted keys (numbers in num alone, so ranges use the
 *          index; booleans as 1/0 and their word), keyed by (inode, key id,
 *          seq): seq numbers a document's rows
 *   keys   the field names, once each: attrs and its indexes hold an id
 *   tags   user.xdg.tags entries and user.tag.* names
 *   fts    FTS5 over names, paths and xattr text (rowid = inode)
 *   fts_names  FTS5 over each name alone (rowid = names.id), so that name:
 *          matches the name being listed, not another link of the file
 *   meta   cursor, how far past it the indexer has read (past: a
 *          cluster's ids have gaps), volume identity, format
 *
 * WAL mode lets `metafs find` read while the indexer writes.
 */
#include "indexer.h"
#include "common.h"

#include <errno.h>
#include <jansson.h>
#include <math.h>
#include <pthread.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define INDEX_FORMAT 7

#define STMT_CACHE 32

struct sq {
	struct idx_backend base;
	sqlite3 *db;
	bool readonly;
	bool bulk; /* a fresh build: every document is new */
	/* statements prepared once: preparing costs more than running them */
	struct {
		const char *sql;
		sqlite3_stmt *st;
	} cache[STMT_CACHE];
	int ncache;
	/* the writer's map of field names to key ids (emptied on rollback,
	 * which may take back ids it handed out) */
	struct key_id {
		char *key;
		int64_t id;
	} *keys;
	size_t nkeys, keys_cap;
};

static struct sq *SQ(struct idx_backend *b)
{
	return (struct sq *)b;
}

static int prep(struct sq *s, const char *sql, sqlite3_stmt **out)
{
	for (int i = 0; i < s->ncache; i++) {
		if (s->cache[i].sql == sql || !strcmp(s->cache[i].sql, sql)) {
			*out = s->cache[i].st;
			return SQLITE_OK;
		}
	}
	int rc = sqlite3_prepare_v3(s->db, sql, -1, SQLITE_PREPARE_PERSISTENT, out, NULL);
	if (rc == SQLITE_OK && s->ncache < STMT_CACHE) {
		s->cache[s->ncache].sql = sql;
		s->cache[s->ncache].st = *out;
		s->ncache++;
	}
	return rc;
}

/* Returns a statement from prep: cached ones are reset for the next use. */
static void done(struct sq *s, sqlite3_stmt *st)
{
	for (int i = 0; i < s->ncache; i++) {
		if (s->cache[i].st == st) {
			sqlite3_reset(st);
			sqlite3_clear_bindings(st);
			return;
		}
	}
	sqlite3_finalize(st);
}

static const char *const schema =
	"PRAGMA journal_mode=WAL;"
	"CREATE TABLE meta(k TEXT PRIMARY KEY, v);"
	"CREATE TABLE docs(ino INTEGER PRIMARY KEY, version INTEGER NOT NULL, mode INTEGER, uid INTEGER,"
	" gid INTEGER, nlink INTEGER, size INTEGER, atime INTEGER, mtime INTEGER, ctime INTEGER,"
	" lver INTEGER NOT NULL DEFAULT 0);"
	"CREATE TABLE names(id INTEGER PRIMARY KEY, ino INTEGER NOT NULL, parent INTEGER NOT NULL,"
	" name BLOB NOT NULL, path BLOB NOT NULL);"
	"CREATE TABLE keys(id INTEGER PRIMARY KEY, key TEXT NOT NULL UNIQUE);"
	"CREATE TABLE attrs(ino INTEGER NOT NULL, kid INTEGER NOT NULL, seq INTEGER NOT NULL, num REAL, str TEXT,"
	" PRIMARY KEY(ino, kid, seq)) WITHOUT ROWID;"
	"CREATE TABLE tags(tag TEXT NOT NULL, ino INTEGER NOT NULL, PRIMARY KEY(tag, ino)) WITHOUT ROWID;"
	/* the lineage graph (prov_graph_sink): a job's seq-th use was of
	 * src@srcver; ino@ver derives from the first n uses of job. Like the
	 * provenance records, edges are never removed. */
	"CREATE TABLE lin_use(src INTEGER NOT NULL, srcver INTEGER NOT NULL, job INTEGER NOT NULL,"
	" seq INTEGER NOT NULL, PRIMARY KEY(src, srcver, job, seq)) WITHOUT ROWID;"
	"CREATE TABLE lin_made(job INTEGER NOT NULL, n INTEGER NOT NULL, ino INTEGER NOT NULL,"
	" ver INTEGER NOT NULL, PRIMARY KEY(job, n, ino, ver)) WITHOUT ROWID;"
	"CREATE TABLE lin_gen(word TEXT NOT NULL, ino INTEGER NOT NULL, PRIMARY KEY(word, ino)) WITHOUT ROWID;"
	"CREATE VIRTUAL TABLE fts USING fts5(name, path, text, tokenize = 'unicode61 remove_diacritics 2');"
	"CREATE VIRTUAL TABLE fts_names USING fts5(name, tokenize = 'unicode61 remove_diacritics 2');";

/* Secondary indexes: a bulk build creates them once its rows are in, which
 * sorts each once instead of inserting into it at random a million times. */
static const char *const schema_indexes =
	"CREATE UNIQUE INDEX IF NOT EXISTS names_entry ON names(parent, name);"
	"CREATE INDEX IF NOT EXISTS names_ino ON names(ino);"
	"CREATE INDEX IF NOT EXISTS names_path ON names(path);"
	"CREATE INDEX IF NOT EXISTS attrs_num ON attrs(kid, num) WHERE num IS NOT NULL;"
	"CREATE INDEX IF NOT EXISTS attrs_str ON attrs(kid, str) WHERE str IS NOT NULL;"
	"CREATE INDEX IF NOT EXISTS tags_ino ON tags(ino);"
	"CREATE INDEX IF NOT EXISTS lin_gen_ino ON lin_gen(ino);";

static int sq_err(struct sq *s, int rc, const char *what)
{
	if (rc == SQLITE_OK || rc == SQLITE_DONE || rc == SQLITE_ROW)
		return 0;
	log_error("index: %s: %s", what, sqlite3_errmsg(s->db));
	if (rc == SQLITE_FULL)
		return -ENOSPC;
	if (rc == SQLITE_BUSY || rc == SQLITE_LOCKED)
		return -EBUSY;
	return -EIO;
}

static int exec(struct sq *s, const char *sql)
{
	char *msg = NULL;
	int rc = sqlite3_exec(s->db, sql, NULL, NULL, &msg);
	if (rc != SQLITE_OK)
		log_error("index: %s: %s", sql, msg ? msg : "?");
	sqlite3_free(msg);
	return rc == SQLITE_OK ? 0 : (rc == SQLITE_FULL ? -ENOSPC : -EIO);
}

/* Prepares, binds int64 arguments, steps once. */
static int exec_i64(struct sq *s, const char *sql, int n, const int64_t *args)
{
	sqlite3_stmt *st;
	int rc = prep(s, sql, &st);
	if (rc != SQLITE_OK)
		return sq_err(s, rc, sql);
	for (int i = 0; i < n; i++)
		sqlite3_bind_int64(st, i + 1, args[i]);
	rc = sqlite3_step(st);
	int r = sq_err(s, rc, sql);
	done(s, st);
	return r;
}

/* Valid UTF-8 for the text index: invalid bytes become U+FFFD. */
char *idx_to_utf8(const char *p, size_t len)
{
	char *out = malloc(len * 3 + 1), *q = out;
	if (!out)
		return NULL;
	const unsigned char *u = (const unsigned char *)p;
	size_t i = 0;
	while (i < len) {
		unsigned c = u[i];
		size_t n = c < 0x80 ? 1 : (c >> 5) == 6 ? 2 : (c >> 4) == 14 ? 3 : (c >> 3) == 30 ? 4 : 0;
		bool ok = n && i + n <= len;
		for (size_t k = 1; ok && k < n; k++)
			ok = (u[i + k] & 0xc0) == 0x80;
		if (ok && c == 0)
			ok = false;
		if (ok) {
			memcpy(q, u + i, n);
			q += n;
			i += n;
		} else {
			memcpy(q, "\xef\xbf\xbd", 3);
			q += 3;
			i++;
		}
	}
	*q = '\0';
	return out;
}

bool idx_is_utf8(const void *p, size_t len)
{
	json_t *j = json_stringn(p, len); /* NULL when the bytes are not UTF-8 */
	json_decref(j);
	return j != NULL;
}

/* ---------------------------------------------------------------- open */

static int meta_get_text(struct sq *s, const char *k, char *out, size_t len)
{
	sqlite3_stmt *st;
	int rc = prep(s, "SELECT v FROM meta WHERE k = ?", &st);
	if (rc != SQLITE_OK)
		return sq_err(s, rc, "meta");
	sqlite3_bind_text(st, 1, k, -1, SQLITE_STATIC);
	rc = sqlite3_step(st);
	int r = -ENOENT;
	if (rc == SQLITE_ROW) {
		const unsigned char *v = sqlite3_column_text(st, 0);
		snprintf(out, len, "%s", v ? (const char *)v : "");
		r = 0;
	} else if (rc != SQLITE_DONE) {
		r = sq_err(s, rc, "meta");
	}
	done(s, st);
	return r;
}

static int meta_set(struct sq *s, const char *k, const char *v)
{
	sqlite3_stmt *st;
	int rc = prep(s, "INSERT OR REPLACE INTO meta(k, v) VALUES(?, ?)", &st);
	if (rc != SQLITE_OK)
		return sq_err(s, rc, "meta");
	sqlite3_bind_text(st, 1, k, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 2, v, -1, SQLITE_STATIC);
	rc = sqlite3_step(st);
	done(s, st);
	return sq_err(s, rc, "meta");
}

/* ---------------------------------------------------------------- writes */

static int sq_begin(struct idx_backend *b)
{
	return exec(SQ(b), "BEGIN IMMEDIATE");
}

static int sq_commit(struct idx_backend *b, uint64_t cursor)
{
	struct sq *s = SQ(b);
	char v[32];
	snprintf(v, sizeof v, "%llu", (unsigned long long)cursor);
	int rc = meta_set(s, "cursor", v);
	if (rc) {
		exec(s, "ROLLBACK");
		return rc;
	}
	return exec(s, "COMMIT");
}

static void keys_clear(struct sq *s)
{
	for (size_t i = 0; i < s->keys_cap; i++)
		free(s->keys[i].key);
	free(s->keys);
	s->keys = NULL;
	s->nkeys = s->keys_cap = 0;
}

static void sq_rollback(struct idx_backend *b)
{
	exec(SQ(b), "ROLLBACK");
	keys_clear(SQ(b));
}

static int64_t ts_ns(struct timespec ts)
{
	return (int64_t)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

static int stored_version(struct sq *s, uint64_t ino, uint64_t *v)
{
	sqlite3_stmt *st;
	int rc = prep(s, "SELECT version FROM docs WHERE ino = ?", &st);
	if (rc != SQLITE_OK)
		return sq_err(s, rc, "version");
	sqlite3_bind_int64(st, 1, (int64_t)ino);
	rc = sqlite3_step(st);
	int r = -ENOENT;
	if (rc == SQLITE_ROW) {
		*v = (uint64_t)sqlite3_column_int64(st, 0);
		r = 0;
	} else if (rc != SQLITE_DONE) {
		r = sq_err(s, rc, "version");
	}
	done(s, st);
	return r;
}

/*
 * Deletes from the FTS5 tables go one rowid at a time. A statement that may
 * change several rows opens a statement savepoint, and FTS5 answers every
 * savepoint by writing its pending terms out as a new segment: one segment
 * a document, and merges without end.
 */
static int fts_names_drop(struct sq *s, const char *select_ids, uint64_t a1, const void *name, size_t nlen)
{
	struct u64_vec ids = { 0 };
	sqlite3_stmt *st;
	int rc = prep(s, select_ids, &st);
	if (rc != SQLITE_OK)
		return sq_err(s, rc, "names");
	sqlite3_bind_int64(st, 1, (int64_t)a1);
	if (name)
		sqlite3_bind_blob(st, 2, name, (int)nlen, SQLITE_STATIC);
	rc = 0;
	int src;
	while (!rc && (src = sqlite3_step(st)) == SQLITE_ROW)
		rc = u64_vec_push(&ids, (uint64_t)sqlite3_column_int64(st, 0));
	if (!rc && src != SQLITE_DONE)
		rc = sq_err(s, src, "names");
	done(s, st);
	for (size_t i = 0; i < ids.n && !rc; i++) {
		int64_t id = (int64_t)ids.v[i];
		if (!(rc = exec_i64(s, "DELETE FROM fts_names WHERE rowid = ?", 1, &id)))
			rc = exec_i64(s, "DELETE FROM names WHERE id = ?", 1, &id);
	}
	free(ids.v);
	return rc;
}

static int remove_rows(struct sq *s, uint64_t ino)
{
	static const char *const sql[] = {
		"DELETE FROM docs WHERE ino = ?",
		"DELETE FROM attrs WHERE ino = ?", "DELETE FROM tags WHERE ino = ?",
		"DELETE FROM fts WHERE rowid = ?", "DELETE FROM lin_gen WHERE ino = ?",
	};
	int rc = fts_names_drop(s, "SELECT id FROM names WHERE ino = ?", ino, NULL, 0);
	int64_t a = (int64_t)ino;
	for (size_t i = 0; i < MFS_ARRAY_LEN(sql) && !rc; i++)
		rc = exec_i64(s, sql[i], 1, &a);
	return rc;
}

static uint64_t key_hash(const char *k)
{
	uint64_t h = 1469598103934665603ULL;
	for (; *k; k++)
		h = (h ^ (unsigned char)*k) * 1099511628211ULL;
	return h;
}

/* The id of a field name, made on first use. */
static int key_id(struct sq *s, const char *key, int64_t *id)
{
	if (s->nkeys * 2 >= s->keys_cap) {
		size_t cap = s->keys_cap ? s->keys_cap * 2 : 64;
		struct key_id *t = calloc(cap, sizeof *t);
		if (!t)
			return -ENOMEM;
		for (size_t i = 0; i < s->keys_cap; i++) {
			if (!s->keys[i].key)
				continue;
			size_t j = key_hash(s->keys[i].key) & (cap - 1);
			while (t[j].key)
				j = (j + 1) & (cap - 1);
			t[j] = s->keys[i];
		}
		free(s->keys);
		s->keys = t;
		s->keys_cap = cap;
	}
	size_t j = key_hash(key) & (s->keys_cap - 1);
	for (; s->keys[j].key; j = (j + 1) & (s->keys_cap - 1))
		if (!strcmp(s->keys[j].key, key)) {
			*id = s->keys[j].id;
			return 0;
		}
	sqlite3_stmt *st;
	int rc = prep(s, "SELECT id FROM keys WHERE key = ?", &st);
	if (rc != SQLITE_OK)
		return sq_err(s, rc, "keys");
	sqlite3_bind_text(st, 1, key, -1, SQLITE_STATIC);
	rc = sqlite3_step(st);
	bool found = rc == SQLITE_ROW;
	if (found)
		*id = sqlite3_column_int64(st, 0);
	done(s, st);
	if (!found) {
		if ((rc = sq_err(s, rc, "keys")))
			return rc;
		if ((rc = prep(s, "INSERT INTO keys(key) VALUES(?)", &st)) != SQLITE_OK)
			return sq_err(s, rc, "keys");
		sqlite3_bind_text(st, 1, key, -1, SQLITE_STATIC);
		rc = sq_err(s, sqlite3_step(st), "keys");
		done(s, st);
		if (rc)
			return rc;
		*id = sqlite3_last_insert_rowid(s->db);
	}
	char *copy = strdup(key);
	if (!copy)
		return -ENOMEM;
	s->keys[j].key = copy;
	s->keys[j].id = *id;
	s->nkeys++;
	return 0;
}

struct attr_sink {
	struct sq *s;
	sqlite3_stmt *st;
	uint64_t ino;
	int64_t seq; /* rows of this document so far */
	int rc;
};

static void attr_row(struct attr_sink *a, const char *key, const double *num, const char *str, size_t slen)
{
	if (a->rc)
		return;
	sqlite3_reset(a->st);
	sqlite3_bind_int64(a->st, 1, (int64_t)a->ino);
	int64_t kid = 0;
	if ((a->rc = key_id(a->s, key, &kid)))
		return;
	sqlite3_bind_int64(a->st, 2, kid);
	sqlite3_bind_int64(a->st, 3, a->seq++);
	if (num)
		sqlite3_bind_double(a->st, 4, *num);
	else
		sqlite3_bind_null(a->st, 4);
	if (str)
		sqlite3_bind_text(a->st, 5, str, (int)slen, SQLITE_TRANSIENT);
	else
		sqlite3_bind_null(a->st, 5);
	a->rc = sq_err(a->s, sqlite3_step(a->st), "attrs");
}

static int add_tag(struct sq *s, uint64_t ino, const char *tag, size_t len)
{
	sqlite3_stmt *st;
	int rc = prep(s, "INSERT OR IGNORE INTO tags(tag, ino) VALUES(?, ?)", &st);
	if (rc != SQLITE_OK)
		return sq_err(s, rc, "tags");
	sqlite3_bind_text(st, 1, tag, (int)len, SQLITE_STATIC);
	sqlite3_bind_int64(st, 2, (int64_t)ino);
	rc = sqlite3_step(st);
	done(s, st);
	return sq_err(s, rc, "tags");
}

/* Appends text to a growing buffer, separated by newlines. */
static int append(char **buf, size_t *len, const char *text)
{
	size_t n = strlen(text);
	char *nb = realloc(*buf, *len + n + 2);
	if (!nb)
		return -ENOMEM;
	memcpy(nb + *len, text, n);
	nb[*len + n] = '\n';
	nb[*len + n + 1] = '\0';
	*buf = nb;
	*len += n + 1;
	return 0;
}

static int drop_name(struct sq *s, uint64_t parent, const char *name, size_t len)
{
	return fts_names_drop(s, "SELECT id FROM names WHERE parent = ? AND name = ?", parent, name, len);
}

static int put_name_fts(struct sq *s, int64_t id, const char *name)
{
	sqlite3_stmt *st;
	int rc = prep(s, "INSERT INTO fts_names(rowid, name) VALUES(?, ?)", &st);
	if (rc != SQLITE_OK)
		return sq_err(s, rc, "fts_names");
	sqlite3_bind_int64(st, 1, id);
	sqlite3_bind_text(st, 2, name, -1, SQLITE_STATIC);
	rc = sqlite3_step(st);
	done(s, st);
	return sq_err(s, rc, "fts_names");
}

static int put_fts(struct sq *s, uint64_t ino, const char *names, const char *paths, const char *text)
{
	sqlite3_stmt *st;
	int rc = prep(s, "INSERT INTO fts(rowid, name, path, text) VALUES(?, ?, ?, ?)", &st);
	if (rc != SQLITE_OK)
		return sq_err(s, rc, "fts");
	sqlite3_bind_int64(st, 1, (int64_t)ino);
	sqlite3_bind_text(st, 2, names ? names : "", -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 3, paths ? paths : "", -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 4, text ? text : "", -1, SQLITE_STATIC);
	rc = sqlite3_step(st);
	done(s, st);
	return sq_err(s, rc, "fts");
}

struct put_fields {
	struct attr_sink a;
	char *text;
	size_t tlen;
};

static int pf_tag(void *arg, const char *tag, size_t len)
{
	struct put_fields *pf = arg;
	return add_tag(pf->a.s, pf->a.ino, tag, len);
}

static int pf_row(void *arg, const char *key, const double *num, const char *str, size_t slen, bool boolean)
{
	struct put_fields *pf = arg;
	attr_row(&pf->a, key, num, str, slen);
	return pf->a.rc;
}

static int pf_text(void *arg, const char *text, size_t len)
{
	struct put_fields *pf = arg;
	char *v = strndup(text, len);
	int rc = !v || append(&pf->text, &pf->tlen, v) ? -ENOMEM : 0;
	free(v);
	return rc;
}

static int sq_lin_use(struct idx_backend *b, uint64_t src, uint64_t src_version, uint64_t job, uint64_t seq)
{
	int64_t row[] = { (int64_t)src, (int64_t)src_version, (int64_t)job, (int64_t)seq };
	return exec_i64(SQ(b), "INSERT OR IGNORE INTO lin_use(src, srcver, job, seq) VALUES(?, ?, ?, ?)", 4, row);
}

static int sq_lin_made(struct idx_backend *b, uint64_t job, uint64_t n, uint64_t ino, uint64_t version)
{
	int64_t row[] = { (int64_t)job, (int64_t)n, (int64_t)ino, (int64_t)version };
	return exec_i64(SQ(b), "INSERT OR IGNORE INTO lin_made(job, n, ino, ver) VALUES(?, ?, ?, ?)", 4, row);
}

static int put_lineage(struct sq *s, const struct idx_doc *d)
{
	int rc = 0;
	sqlite3_stmt *st;
	if (d->ngen) {
		if ((rc = prep(s, "INSERT OR IGNORE INTO lin_gen(word, ino) VALUES(?, ?)", &st)) != SQLITE_OK)
			return sq_err(s, rc, "lineage");
		rc = 0;
		for (size_t i = 0; i < d->ngen && !rc; i++) {
			sqlite3_reset(st);
			sqlite3_bind_text(st, 1, d->gen[i], -1, SQLITE_STATIC);
			sqlite3_bind_int64(st, 2, (int64_t)d->in.ino);
			rc = sq_err(s, sqlite3_step(st), "lineage");
		}
		done(s, st);
	}
	return rc;
}

static int sq_put(struct idx_backend *b, const struct idx_doc *d)
{
	struct sq *s = SQ(b);
	uint64_t ino = d->in.ino, have = 0;
	int rc = 0;
	if (!s->bulk) {
		rc = stored_version(s, ino, &have);
		if (rc == 0 && have > d->in.version)
			return 0; /* a newer state is indexed already */
		if (rc && rc != -ENOENT)
			return rc;
		/* no document row, no rows of any kind: nothing to remove */
		if (rc == 0 && (rc = remove_rows(s, ino)))
			return rc;
		rc = 0;
	}
	int64_t row[] = { (int64_t)ino, (int64_t)d->in.version, d->in.mode, d->in.uid, d->in.gid, d->in.nlink,
			  (int64_t)d->in.size, ts_ns(d->in.atime), ts_ns(d->in.mtime), ts_ns(d->in.ctime),
			  (int64_t)d->lin_version };
	rc = exec_i64(s, "INSERT INTO docs(ino, version, mode, uid, gid, nlink, size, atime, mtime, ctime, lver)"
			 " VALUES(?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)", 11, row);
	if (rc)
		return rc;

	char *names = NULL, *paths = NULL;
	size_t nlen = 0, plen = 0;
	sqlite3_stmt *st;
	rc = prep(s, "INSERT INTO names(ino, parent, name, path) VALUES(?, ?, ?, ?)", &st);
	if (rc != SQLITE_OK)
		return sq_err(s, rc, "names");
	for (size_t i = 0; i < d->nnames && !rc; i++) {
		const struct idx_name *n = &d->names[i];
		/* an entry another document still holds is stale: it moved here */
		if (!s->bulk && (rc = drop_name(s, n->parent, n->name, n->name_len)))
			break;
		sqlite3_reset(st);
		sqlite3_bind_int64(st, 1, (int64_t)ino);
		sqlite3_bind_int64(st, 2, (int64_t)n->parent);
		sqlite3_bind_blob(st, 3, n->name, (int)n->name_len, SQLITE_STATIC);
		sqlite3_bind_blob(st, 4, n->path, (int)n->path_len, SQLITE_STATIC);
		rc = sq_err(s, sqlite3_step(st), "names");
		char *u = idx_to_utf8(n->name, n->name_len), *pu = idx_to_utf8(n->path, n->path_len);
		if (!rc && u)
			rc = put_name_fts(s, sqlite3_last_insert_rowid(s->db), u);
		if (!rc && (!u || !pu || append(&names, &nlen, u) || append(&paths, &plen, pu)))
			rc = -ENOMEM;
		free(u);
		free(pu);
	}
	done(s, st);

	struct put_fields pf = { { s, NULL, ino, 0, 0 }, NULL, 0 };
	if (!rc && prep(s, "INSERT INTO attrs(ino, kid, seq, num, str) VALUES(?, ?, ?, ?, ?)", &pf.a.st) != SQLITE_OK)
		rc = sq_err(s, SQLITE_ERROR, "attrs");
	struct idx_field_sink sink = { pf_tag, pf_row, pf_text, &pf };
	if (!rc)
		rc = idx_doc_analyze(d, &sink);
	if (pf.a.st)
		done(s, pf.a.st);
	if (!rc)
		rc = put_fts(s, ino, names, paths, pf.text);
	free(names);
	free(paths);
	free(pf.text);
	if (!rc)
		rc = put_lineage(s, d);
	return rc;
}

static int sq_del(struct idx_backend *b, uint64_t ino, uint64_t version)
{
	struct sq *s = SQ(b);
	uint64_t have = 0;
	int rc = stored_version(s, ino, &have);
	if (rc == -ENOENT)
		return 0;
	if (rc)
		return rc;
	if (have > version)
		return 0;
	return remove_rows(s, ino);
}

/* The smallest byte string above every string that starts with prefix. */
static size_t prefix_end(const char *prefix, size_t len, char *out)
{
	memcpy(out, prefix, len);
	while (len && (unsigned char)out[len - 1] == 0xff)
		len--;
	if (len)
		out[len - 1]++;
	return len;
}

static int refresh_fts(struct sq *s, uint64_t ino)
{
	/* rebuild the row's names and paths from the names table, keeping text */
	sqlite3_stmt *st;
	char *text = NULL;
	int rc = prep(s, "SELECT text FROM fts WHERE rowid = ?", &st);
	if (rc != SQLITE_OK)
		return sq_err(s, rc, "fts");
	sqlite3_bind_int64(st, 1, (int64_t)ino);
	if (sqlite3_step(st) == SQLITE_ROW && sqlite3_column_text(st, 0))
		text = strdup((const char *)sqlite3_column_text(st, 0));
	done(s, st);
	char *names = NULL, *paths = NULL;
	size_t nlen = 0, plen = 0;
	rc = prep(s, "SELECT name, path FROM names WHERE ino = ?", &st);
	if (rc != SQLITE_OK) {
		free(text);
		return sq_err(s, rc, "names");
	}
	sqlite3_bind_int64(st, 1, (int64_t)ino);
	rc = 0;
	while (!rc && sqlite3_step(st) == SQLITE_ROW) {
		char *u = idx_to_utf8(sqlite3_column_blob(st, 0), (size_t)sqlite3_column_bytes(st, 0));
		char *pu = idx_to_utf8(sqlite3_column_blob(st, 1), (size_t)sqlite3_column_bytes(st, 1));
		if (!u || !pu || append(&names, &nlen, u) || append(&paths, &plen, pu))
			rc = -ENOMEM;
		free(u);
		free(pu);
	}
	done(s, st);
	int64_t a = (int64_t)ino;
	if (!rc)
		rc = exec_i64(s, "DELETE FROM fts WHERE rowid = ?", 1, &a);
	if (!rc)
		rc = put_fts(s, ino, names, paths, text);
	free(names);
	free(paths);
	free(text);
	return rc;
}

static int sq_move_subtree(struct idx_backend *b, const char *old, size_t old_len, const char *new_prefix,
			   size_t new_len)
{
	struct sq *s = SQ(b);
	char *end = malloc(old_len + 1);
	if (!end)
		return -ENOMEM;
	size_t end_len = prefix_end(old, old_len, end);
	/* the inodes whose paths change, for their text rows */
	struct u64_vec inos = { 0 };
	sqlite3_stmt *st;
	int rc = prep(s, "SELECT DISTINCT ino FROM names WHERE path >= ? AND path < ?", &st);
	if (rc != SQLITE_OK) {
		free(end);
		return sq_err(s, rc, "move");
	}
	sqlite3_bind_blob(st, 1, old, (int)old_len, SQLITE_STATIC);
	sqlite3_bind_blob(st, 2, end, (int)end_len, SQLITE_STATIC);
	rc = 0;
	while (!rc && sqlite3_step(st) == SQLITE_ROW)
		rc = u64_vec_push(&inos, (uint64_t)sqlite3_column_int64(st, 0));
	done(s, st);
	if (!rc) {
		rc = prep(s, "UPDATE names SET path = CAST(? || substr(path, ?) AS BLOB)"
					" WHERE path >= ? AND path < ?", &st);
		if (rc == SQLITE_OK) {
			sqlite3_bind_blob(st, 1, new_prefix, (int)new_len, SQLITE_STATIC);
			sqlite3_bind_int64(st, 2, (int64_t)old_len + 1);
			sqlite3_bind_blob(st, 3, old, (int)old_len, SQLITE_STATIC);
			sqlite3_bind_blob(st, 4, end, (int)end_len, SQLITE_STATIC);
			rc = sq_err(s, sqlite3_step(st), "move");
			done(s, st);
		} else {
			rc = sq_err(s, rc, "move");
		}
	}
	for (size_t i = 0; i < inos.n && !rc; i++)
		rc = refresh_fts(s, inos.v[i]);
	free(inos.v);
	free(end);
	return rc;
}

struct paths_cb_args {
	name_cb cb;
	void *arg;
};

static int sq_paths_of(struct idx_backend *b, uint64_t ino, name_cb cb, void *arg)
{
	struct sq *s = SQ(b);
	sqlite3_stmt *st;
	int rc = prep(s, "SELECT parent, path FROM names WHERE ino = ?", &st);
	if (rc != SQLITE_OK)
		return sq_err(s, rc, "paths");
	sqlite3_bind_int64(st, 1, (int64_t)ino);
	rc = 0;
	while (!rc && (rc = sqlite3_step(st)) == SQLITE_ROW)
		rc = cb(arg, (uint64_t)sqlite3_column_int64(st, 0), sqlite3_column_blob(st, 1),
			(size_t)sqlite3_column_bytes(st, 1));
	int r = rc == SQLITE_DONE || rc == 1 ? 0 : rc < 0 ? rc : sq_err(s, rc, "paths");
	done(s, st);
	return r;
}

static int sq_cursor(struct idx_backend *b, uint64_t *seq)
{
	char v[32];
	int rc = meta_get_text(SQ(b), "cursor", v, sizeof v);
	*seq = rc ? 0 : strtoull(v, NULL, 10);
	return rc == -ENOENT ? 0 : rc;
}

static int sq_set_past(struct idx_backend *b, const struct idx_past *p)
{
	char v[80];
	snprintf(v, sizeof v, "%llu %llu %llu", (unsigned long long)p->cursor, (unsigned long long)p->seen,
		 (unsigned long long)p->done);
	return meta_set(SQ(b), "past", v);
}

static int sq_past(struct idx_backend *b, struct idx_past *p)
{
	char v[80];
	int rc = meta_get_text(SQ(b), "past", v, sizeof v);
	if (rc)
		return rc;
	unsigned long long c, s, d;
	if (sscanf(v, "%llu %llu %llu", &c, &s, &d) != 3)
		return -ENOENT;
	*p = (struct idx_past){ c, s, d };
	return 0;
}

static int sq_get_volume(struct idx_backend *b, char *uuid, size_t len)
{
	return meta_get_text(SQ(b), "volume", uuid, len);
}

static int sq_set_volume(struct idx_backend *b, const char *uuid)
{
	return meta_set(SQ(b), "volume", uuid);
}

static bool sq_has_attr(struct idx_backend *b, const char *name)
{
	struct sq *s = SQ(b);
	sqlite3_stmt *st;
	/* the key itself, or a field inside it ("a" knows "a.b") */
	if (prep(s, "SELECT 1 FROM keys k WHERE (k.key = ?1 OR (k.key > ?1 || '.' AND k.key < ?1 || '/'))"
		    " AND EXISTS (SELECT 1 FROM attrs a WHERE a.kid = k.id) LIMIT 1", &st) != SQLITE_OK)
		return false;
	sqlite3_bind_text(st, 1, name, -1, SQLITE_STATIC);
	bool found = sqlite3_step(st) == SQLITE_ROW;
	done(s, st);
	return found;
}

static int sq_count(struct idx_backend *b, uint64_t *n)
{
	struct sq *s = SQ(b);
	sqlite3_stmt *st;
	int rc = prep(s, "SELECT count(*) FROM docs", &st);
	if (rc != SQLITE_OK)
		return sq_err(s, rc, "count");
	rc = sqlite3_step(st);
	*n = rc == SQLITE_ROW ? (uint64_t)sqlite3_column_int64(st, 0) : 0;
	done(s, st);
	return rc == SQLITE_ROW ? 0 : sq_err(s, rc, "count");
}

/* ---------------------------------------------------------------- queries */

/* SQL text being built, with its parameters */
struct sqlbuf {
	char *s;
	size_t len, cap;
	struct param {
		int kind; /* 0 int, 1 real, 2 text, 3 blob */
		int64_t i;
		double d;
		char *t;
		size_t tlen;
	} p[256];
	int np;
	int err;
	const struct q_node *skip; /* the term the FROM clause already applies */
	bool skip_words; /* the FROM clause applies every free word of the AND chain */
	/* rows come from a small driving set: test the other index terms row
	 * by row (a point lookup each) instead of gathering all their matches */
	bool per_row;
};

static void put(struct sqlbuf *b, const char *text)
{
	size_t n = strlen(text);
	if (b->err)
		return;
	if (mfs_array_reserve(&b->s, &b->cap, b->len + n, 1)) {
		b->err = -ENOMEM;
		return;
	}
	memcpy(b->s + b->len, text, n);
	b->len += n;
	b->s[b->len] = '\0';
}

static struct param *param(struct sqlbuf *b)
{
	if (b->np >= (int)MFS_ARRAY_LEN(b->p)) {
		b->err = -E2BIG;
		return &b->p[0];
	}
	put(b, "?");
	return &b->p[b->np++];
}

static void p_int(struct sqlbuf *b, int64_t v)
{
	struct param *p = param(b);
	p->kind = 0;
	p->i = v;
}

static void p_real(struct sqlbuf *b, double v)
{
	struct param *p = param(b);
	p->kind = 1;
	p->d = v;
}

static void p_text(struct sqlbuf *b, const char *t, size_t len, int kind)
{
	struct param *p = param(b);
	p->kind = kind;
	p->t = malloc(len + 1);
	if (!p->t) {
		b->err = -ENOMEM;
		return;
	}
	memcpy(p->t, t, len);
	p->t[len] = '\0';
	p->tlen = len;
}

/* An FTS5 string: double quotes doubled. */
char *idx_fts_quote(const char *v)
{
	size_t n = strlen(v);
	char *out = malloc(n * 2 + 3), *q = out;
	if (!out)
		return NULL;
	*q++ = '"';
	for (const char *p = v; *p; p++) {
		if (*p == '"')
			*q++ = '"';
		*q++ = *p;
	}
	*q++ = '"';
	*q = '\0';
	return out;
}

static void cmp(struct sqlbuf *b, const char *col, const struct q_node *t, bool real)
{
	static const char *const ops[] = { [QOP_MATCH] = " = ", [QOP_GT] = " > ", [QOP_GE] = " >= ",
					   [QOP_LT] = " < ", [QOP_LE] = " <= " };
	put(b, "(");
	put(b, col);
	if (t->op == QOP_RANGE) {
		put(b, " BETWEEN ");
		real ? p_real(b, t->real) : p_int(b, t->num);
		put(b, " AND ");
		real ? p_real(b, t->real2) : p_int(b, t->num2);
	} else {
		put(b, ops[t->op]);
		real ? p_real(b, t->real) : p_int(b, t->num);
	}
	put(b, ")");
}

/* A field name's key id, as SQL: put it, the name as a parameter, then ")". */
#define KEY_OF "(SELECT id FROM keys WHERE key = "

/* The value condition of an xattr-field term, on the attrs columns. */
static void attr_cond(struct sqlbuf *b, const struct q_node *n, const char *num_col, const char *str_col)
{
	if (n->vtype == QV_NUMBER || (n->vtype == QV_BOOL && n->op != QOP_MATCH)) {
		cmp(b, num_col, n, true);
	} else if (n->vtype == QV_BOOL) {
		put(b, str_col);
		put(b, " = ");
		p_text(b, n->num ? "true" : "false", n->num ? 4 : 5, 2);
	} else {
		/* A number is indexed without its text, so a quoted value finds
		 * one when it is the number's text (q_number_text): that and
		 * nothing else. */
		double d;
		bool as_num = q_number_text(n->value, &d);
		put(b, as_num ? "(" : "");
		put(b, str_col);
		put(b, " = ");
		p_text(b, n->value, strlen(n->value), 2);
		if (as_num) {
			put(b, " OR (");
			put(b, num_col);
			put(b, " = ");
			p_real(b, d);
			put(b, " AND ");
			put(b, str_col);
			put(b, " IS NULL))");
		}
	}
}

/* top: n is in the top-level AND chain */
static void compile_at(struct sqlbuf *b, const struct q_node *n, bool top)
{
	if (b->err)
		return;
	if (n == b->skip || (top && b->skip_words && n->kind == Q_TERM && n->f == QF_TEXT)) {
		put(b, "1");
		return;
	}
	switch (n->kind) {
	case Q_AND:
	case Q_OR:
		put(b, "(");
		compile_at(b, n->left, top && n->kind == Q_AND);
		put(b, n->kind == Q_AND ? " AND " : " OR ");
		compile_at(b, n->right, top && n->kind == Q_AND);
		put(b, ")");
		return;
	case Q_NOT:
		put(b, "(NOT ");
		compile_at(b, n->left, false);
		put(b, ")");
		return;
	case Q_TERM:
		break;
	}
	char *q;
	switch (n->f) {
	case QF_TEXT:
	case QF_NAME:
		if (n->f == QF_NAME && n->glob) {
			/* of the name being listed, so a hard link shows only
			 * under the names that match */
			put(b, "(CAST(n.name AS TEXT) GLOB ");
			p_text(b, n->value, strlen(n->value), 2);
			put(b, ")");
			return;
		}
		q = idx_fts_quote(n->value);
		if (!q) {
			b->err = -ENOMEM;
			return;
		}
		if (n->f == QF_NAME) {
			/* The name being listed holds the word. Even beside a
			 * driving set this gathers the word's matches first: an
			 * FTS5 lookup a row costs as much as reading a few
			 * hundred matches. There, "+" makes it a test against
			 * the gathered set: as an index constraint, SQLite would
			 * probe every one of its values for each driving row. */
			put(b, b->per_row ? "+n.id IN (SELECT rowid FROM fts_names WHERE fts_names MATCH "
					  : "n.id IN (SELECT rowid FROM fts_names WHERE fts_names MATCH ");
		} else {
			put(b, "d.ino IN (SELECT rowid FROM fts WHERE fts MATCH ");
		}
		p_text(b, q, strlen(q), 2);
		put(b, ")");
		free(q);
		return;
	case QF_PATH: {
		size_t len = strlen(n->value);
		while (len > 1 && n->value[len - 1] == '/')
			len--;
		char *pre = malloc(len + 2), *end = malloc(len + 2);
		if (!pre || !end) {
			free(pre);
			free(end);
			b->err = -ENOMEM;
			return;
		}
		memcpy(pre, n->value, len);
		size_t plen = len;
		if (!(len == 1 && pre[0] == '/'))
			pre[plen++] = '/';
		size_t elen = prefix_end(pre, plen, end);
		/* like name globs, a condition on the name being listed */
		put(b, "(n.path = ");
		p_text(b, n->value, len, 3);
		put(b, " OR (n.path >= ");
		p_text(b, pre, plen, 3);
		put(b, " AND n.path < ");
		p_text(b, end, elen, 3);
		put(b, "))");
		free(pre);
		free(end);
		return;
	}
	case QF_TYPE:
		put(b, "((d.mode & 61440) = ");
		p_int(b, n->num);
		put(b, ")");
		return;
	case QF_SIZE: cmp(b, "d.size", n, false); return;
	case QF_MTIME: cmp(b, "d.mtime", n, false); return;
	case QF_ATIME: cmp(b, "d.atime", n, false); return;
	case QF_CTIME: cmp(b, "d.ctime", n, false); return;
	case QF_UID: cmp(b, "d.uid", n, false); return;
	case QF_GID: cmp(b, "d.gid", n, false); return;
	case QF_MODE: cmp(b, "(d.mode & 4095)", n, false); return;
	case QF_NLINK: cmp(b, "d.nlink", n, false); return;
	case QF_TAG:
		/* beside a driving set, a point lookup a row */
		put(b, b->per_row ? "EXISTS (SELECT 1 FROM tags WHERE tags.ino = d.ino AND tag = "
				  : "d.ino IN (SELECT ino FROM tags WHERE tag = ");
		p_text(b, n->value, strlen(n->value), 2);
		put(b, ")");
		return;
	case QF_DERIVED:
		/* down the graph from every version of the file at the path:
		 * the versions made by the jobs that used one, after that use,
		 * and so on; of those, the files' current versions. UNION
		 * visits each version once, so a cycle (a job rewriting what it
		 * read) ends. */
		put(b, "d.ino IN (WITH RECURSIVE s(ino) AS (SELECT ino FROM names WHERE path = ");
		p_text(b, n->value, strlen(n->value), 3);
		put(b, "), r(ino, ver) AS ("
		       "SELECT m.ino, m.ver FROM s JOIN lin_use u ON u.src = s.ino"
		       " JOIN lin_made m ON m.job = u.job AND m.n >= u.seq"
		       " UNION SELECT m.ino, m.ver FROM r JOIN lin_use u ON u.src = r.ino AND u.srcver = r.ver"
		       " JOIN lin_made m ON m.job = u.job AND m.n >= u.seq)"
		       " SELECT r.ino FROM r JOIN docs c ON c.ino = r.ino AND c.lver = r.ver"
		       " WHERE r.ino NOT IN (SELECT ino FROM s))");
		return;
	case QF_GENERATED:
		put(b, "d.ino IN (SELECT ino FROM lin_gen WHERE word = ");
		p_text(b, n->value, strlen(n->value), 2);
		put(b, ")");
		return;
	case QF_ATTR:
		put(b, b->per_row ? "EXISTS (SELECT 1 FROM attrs WHERE attrs.ino = d.ino AND kid = " KEY_OF
				  : "d.ino IN (SELECT ino FROM attrs WHERE kid = " KEY_OF);
		p_text(b, n->attr, strlen(n->attr), 2);
		put(b, ") AND ");
		attr_cond(b, n, "num", "str");
		put(b, ")");
		return;
	}
}

static void compile(struct sqlbuf *b, const struct q_node *n)
{
	compile_at(b, n, true);
}

/*
 * Free words as one FTS5 query, joined by sep. Through AND only, they are
 * the words every result must hold (the query can start from the text
 * index); through OR too, they are what ranks the results. Words under a
 * NOT never count.
 */
static void collect_words(const struct q_node *n, bool through_or, const char *sep, char **acc, size_t *len)
{
	if (!n || n->kind == Q_NOT)
		return;
	if (n->kind == Q_AND || (n->kind == Q_OR && through_or)) {
		collect_words(n->left, through_or, sep, acc, len);
		collect_words(n->right, through_or, sep, acc, len);
		return;
	}
	if (n->kind != Q_TERM || n->f != QF_TEXT)
		return;
	char *q = idx_fts_quote(n->value);
	if (!q)
		return;
	size_t ql = strlen(q), sl = strlen(sep);
	char *na = realloc(*acc, *len + sl + ql + 1);
	if (na) {
		if (*len)
			memcpy(na + *len, sep, sl), *len += sl;
		memcpy(na + *len, q, ql + 1);
		*len += ql;
		*acc = na;
	}
	free(q);
}

/* The terms every result must satisfy: the top-level AND chain. */
static void conjuncts(const struct q_node *n, const struct q_node **out, int *k, int max)
{
	if (!n)
		return;
	if (n->kind == Q_AND) {
		conjuncts(n->left, out, k, max);
		conjuncts(n->right, out, k, max);
	} else if (*k < max) {
		out[(*k)++] = n;
	}
}

static int bind_all(sqlite3_stmt *st, struct sqlbuf *b);
static void sqlbuf_free(struct sqlbuf *b);

/* A statement listing the index entries of one tag, field or name-word
 * term (NULL if it cannot be prepared); b keeps its values. */
static sqlite3_stmt *term_rows(struct sq *s, const struct q_node *n, struct sqlbuf *b)
{
	if (n->f == QF_TAG) {
		put(b, "SELECT 1 FROM tags WHERE tag = ");
		p_text(b, n->value, strlen(n->value), 2);
	} else if (n->f == QF_ATTR) {
		put(b, "SELECT 1 FROM attrs WHERE kid = " KEY_OF);
		p_text(b, n->attr, strlen(n->attr), 2);
		put(b, ") AND ");
		attr_cond(b, n, "num", "str");
	} else {
		char *q = idx_fts_quote(n->value);
		put(b, "SELECT 1 FROM fts_names WHERE fts_names MATCH ");
		if (q)
			p_text(b, q, strlen(q), 2);
		else
			b->err = -ENOMEM;
		free(q);
	}
	sqlite3_stmt *st = NULL;
	if (b->err || sqlite3_prepare_v2(s->db, b->s, -1, &st, NULL) != SQLITE_OK) {
		sqlite3_finalize(st);
		st = NULL;
	} else {
		bind_all(st, b); /* b holds the values until st is finalized */
	}
	return st;
}

#define DRIVERS_MAX 8
#define RACE_CAP 20000

/*
 * The term to start from: of the tag, xattr-field and name-word terms that
 * every result must satisfy, the one with the fewest matches, so that the
 * first results come after reading a few rows instead of gathering every
 * match of a common term. The candidates' index entries are read in turns,
 * one row each, and the first list to end wins: that costs twice the
 * smallest count, not the sum of them. When every list runs past RACE_CAP
 * the first candidate is taken (tags, then fields, then name words).
 */
static const struct q_node *pick_driver(struct sq *s, const struct q_node *q)
{
	const struct q_node *all[64], *cand[DRIVERS_MAX];
	sqlite3_stmt *st[DRIVERS_MAX];
	int k = 0, nc = 0;
	conjuncts(q, all, &k, 64);
	static const enum q_field order[] = { QF_TAG, QF_ATTR, QF_NAME };
	for (size_t o = 0; o < MFS_ARRAY_LEN(order); o++)
		for (int i = 0; i < k && nc < DRIVERS_MAX; i++)
			if (all[i]->kind == Q_TERM && all[i]->f == order[o] && (order[o] != QF_NAME || !all[i]->glob))
				cand[nc++] = all[i];
	if (nc <= 1)
		return nc ? cand[0] : NULL;
	struct sqlbuf *bufs = calloc((size_t)nc, sizeof *bufs);
	if (!bufs)
		return cand[0];
	for (int i = 0; i < nc; i++)
		st[i] = term_rows(s, cand[i], &bufs[i]);
	const struct q_node *best = NULL;
	for (int round = 0; round < RACE_CAP && !best; round++) {
		bool any = false;
		for (int i = 0; i < nc && !best; i++) {
			if (!st[i])
				continue;
			any = true;
			if (sqlite3_step(st[i]) != SQLITE_ROW)
				best = cand[i];
		}
		if (!any)
			break;
	}
	for (int i = 0; i < nc; i++) {
		sqlite3_finalize(st[i]);
		sqlbuf_free(&bufs[i]);
	}
	free(bufs);
	return best ? best : cand[0];
}

static int bind_all(sqlite3_stmt *st, struct sqlbuf *b)
{
	for (int i = 0; i < b->np; i++) {
		struct param *p = &b->p[i];
		switch (p->kind) {
		case 0: sqlite3_bind_int64(st, i + 1, p->i); break;
		case 1: sqlite3_bind_double(st, i + 1, p->d); break;
		case 2: sqlite3_bind_text(st, i + 1, p->t, (int)p->tlen, SQLITE_STATIC); break;
		default: sqlite3_bind_blob(st, i + 1, p->t, (int)p->tlen, SQLITE_STATIC); break;
		}
	}
	return 0;
}

static void sqlbuf_free(struct sqlbuf *b)
{
	for (int i = 0; i < b->np; i++)
		free(b->p[i].t);
	free(b->s);
}

/* Puts "WITH name AS (the documents holding words, scored)" before the
 * text so far (which holds no parameters); top > 0 keeps the best top,
 * ties broken by inode as the results are. */
static void with_scored(struct sqlbuf *b, const char *name, const char *words, size_t wlen, long top)
{
	char *head = b->s ? strndup(b->s, b->len) : strdup("");
	char tail[80] = ") ";
	if (!head) {
		b->err = -ENOMEM;
		return;
	}
	b->len = 0;
	if (b->s)
		b->s[0] = '\0';
	put(b, "WITH ");
	put(b, name);
	put(b, " AS MATERIALIZED (SELECT rowid AS r, -bm25(fts, 10.0, 2.0, 1.0) AS score FROM fts WHERE fts MATCH ");
	p_text(b, words, wlen, 2);
	if (top > 0)
		snprintf(tail, sizeof tail, " ORDER BY 2 DESC, 1 LIMIT %ld) ", top);
	put(b, tail);
	put(b, head);
	free(head);
}

/*
 * The SQL of a query. With top > 0, a query ranked by free words that all
 * results hold joins and sorts only the `top` best-scored documents of the
 * text index, every row carries how many were taken, and *topped is set;
 * see sq_query.
 */
static struct sqlbuf *build_sql(struct sq *s, const struct q_node *q, const struct idx_query_opts *o, long top,
				bool *topped)
{
	struct sqlbuf *b = calloc(1, sizeof *b);
	if (!b)
		return NULL;
	char *rank = NULL, *drive = NULL;
	size_t rlen = 0, dlen = 0;
	collect_words(q, true, " OR ", &rank, &rlen);
	collect_words(q, false, " AND ", &drive, &dlen);
	const struct q_node *driver = NULL;
	if (!drive && !rank)
		driver = pick_driver(s, q);
	b->per_row = driver != NULL;
	/* an array field can match one document several times */
	put(b, driver && driver->f == QF_ATTR ? "SELECT DISTINCT " : "SELECT ");
	put(b, "d.ino, d.mode, d.uid, d.gid, d.nlink, d.size, d.atime, d.mtime, d.ctime, n.parent, n.path, ");
	if (driver && driver->f == QF_NAME) {
		char *fq = idx_fts_quote(driver->value);
		put(b, "0 AS score, NULL, NULL FROM fts_names JOIN names n ON n.id = fts_names.rowid JOIN docs d ON d.ino = n.ino"
		       " WHERE fts_names MATCH ");
		if (fq)
			p_text(b, fq, strlen(fq), 2);
		else
			b->err = -ENOMEM;
		free(fq);
		put(b, " AND ");
		b->skip = driver;
	} else if (driver && driver->f == QF_TAG) {
		put(b, "0 AS score, NULL, NULL FROM tags t JOIN docs d ON d.ino = t.ino JOIN names n ON n.ino = d.ino WHERE t.tag = ");
		p_text(b, driver->value, strlen(driver->value), 2);
		put(b, " AND ");
		b->skip = driver;
	} else if (driver) {
		put(b, "0 AS score, NULL, NULL FROM attrs a JOIN docs d ON d.ino = a.ino JOIN names n ON n.ino = d.ino"
		       " WHERE a.kid = " KEY_OF);
		p_text(b, driver->attr, strlen(driver->attr), 2);
		put(b, ") AND ");
		attr_cond(b, driver, "a.num", "a.str");
		put(b, " AND ");
		b->skip = driver;
	} else if (drive && top > 0) {
		/* the best `top` of the text index, scored once */
		with_scored(b, "top", drive, dlen, top);
		put(b, "top.score AS score, (SELECT count(*) FROM top), NULL"
		       " FROM top JOIN docs d ON d.ino = top.r JOIN names n ON n.ino = d.ino WHERE ");
		b->skip_words = true;
		*topped = true;
	} else if (drive) {
		/* every result holds these words: start from the text index,
		 * which also gives the ranking */
		put(b, "-bm25(fts, 10.0, 2.0, 1.0) AS score, NULL, NULL FROM fts JOIN docs d ON d.ino = fts.rowid"
		       " JOIN names n ON n.ino = d.ino WHERE fts MATCH ");
		p_text(b, drive, dlen, 2);
		put(b, " AND ");
		b->skip_words = true;
	} else if (rank) {
		/* words only in some branches: every document holding any of
		 * them scored once, beside the rows they rank (an FTS5 query a
		 * row would cost far more) */
		with_scored(b, "ranked", rank, rlen, 0);
		/* a scalar subquery: SQLite gives it an automatic index, where
		 * a LEFT JOIN would scan the whole set for every row */
		put(b, "coalesce((SELECT score FROM ranked WHERE ranked.r = d.ino), 0) AS score, NULL, NULL"
		       " FROM docs d JOIN names n ON n.ino = d.ino WHERE ");
	} else {
		put(b, "0 AS score, NULL, NULL FROM docs d JOIN names n ON n.ino = d.ino WHERE ");
	}
	free(drive);
	compile(b, q);
	if (o && o->under && o->under[0]) {
		put(b, " AND (");
		for (int i = 0; o->under[i]; i++) {
			const char *u = o->under[i];
			size_t len = strlen(u);
			while (len > 1 && u[len - 1] == '/')
				len--;
			if (i)
				put(b, " OR ");
			if (len == 1 && u[0] == '/') {
				put(b, "1");
				continue;
			}
			char *pre = malloc(len + 2), *end = malloc(len + 2);
			if (!pre || !end) {
				free(pre);
				free(end);
				b->err = -ENOMEM;
				break;
			}
			memcpy(pre, u, len);
			pre[len] = '/';
			size_t elen = prefix_end(pre, len + 1, end);
			put(b, "n.path = ");
			p_text(b, u, len, 3);
			put(b, " OR (n.path >= ");
			p_text(b, pre, len + 1, 3);
			put(b, " AND n.path < ");
			p_text(b, end, elen, 3);
			put(b, ")");
			free(pre);
			free(end);
		}
		put(b, ")");
	}
	static const char *const order[] = {
		[IDX_SORT_SCORE] = " ORDER BY score DESC, d.ino, n.path",
		[IDX_SORT_NAME] = " ORDER BY n.name, n.path",
		[IDX_SORT_SIZE] = " ORDER BY d.size DESC, n.path",
		[IDX_SORT_MTIME] = " ORDER BY d.mtime DESC, n.path",
		[IDX_SORT_PATH] = " ORDER BY n.path",
	};
	enum idx_sort sort = o ? o->sort : IDX_SORT_SCORE;
	bool unranked = sort == IDX_SORT_SCORE && !rank;
	/* without words to rank by, every score is 0: the index order is as
	 * good as any, and lets the first results come without a sort */
	put(b, unranked ? "" : order[sort]);
	if (o && o->reverse && !unranked) {
		/* flip every key */
		static const char *const rorder[] = {
			[IDX_SORT_SCORE] = " ORDER BY score ASC, d.ino DESC, n.path DESC",
			[IDX_SORT_NAME] = " ORDER BY n.name DESC, n.path DESC",
			[IDX_SORT_SIZE] = " ORDER BY d.size ASC, n.path DESC",
			[IDX_SORT_MTIME] = " ORDER BY d.mtime ASC, n.path DESC",
			[IDX_SORT_PATH] = " ORDER BY n.path DESC",
		};
		b->len -= strlen(order[sort]);
		b->s[b->len] = '\0';
		put(b, rorder[sort]);
	}
	free(rank);
	return b;
}

/* Runs one statement, calling cb for its rows after the first `skip`.
 * With top > 0 (see build_sql), *more says that the caller read every row
 * and the text index may hold more matches than the `top` taken. */
static int run_rows(struct sq *s, struct sqlbuf *b, long top, long skip, long *emitted, bool *more, idx_hit_cb cb,
		    void *arg)
{
	sqlite3_stmt *st = NULL;
	int rc = b->err;
	*more = false;
	if (!rc) {
		int src = sqlite3_prepare_v2(s->db, b->s, -1, &st, NULL);
		if (src != SQLITE_OK)
			rc = sq_err(s, src, "query");
	}
	if (!rc) {
		bind_all(st, b);
		int src;
		long seen = 0, taken = -1;
		bool stopped = false;
		while ((src = sqlite3_step(st)) == SQLITE_ROW) {
			taken = (long)sqlite3_column_int64(st, 12);
			if (seen++ < skip)
				continue;
			struct idx_hit h = {
				.ino = (uint64_t)sqlite3_column_int64(st, 0),
				.mode = (uint32_t)sqlite3_column_int64(st, 1),
				.uid = (uint32_t)sqlite3_column_int64(st, 2),
				.gid = (uint32_t)sqlite3_column_int64(st, 3),
				.nlink = (uint32_t)sqlite3_column_int64(st, 4),
				.size = (uint64_t)sqlite3_column_int64(st, 5),
				.atime = sqlite3_column_int64(st, 6),
				.mtime = sqlite3_column_int64(st, 7),
				.ctime = sqlite3_column_int64(st, 8),
				.parent = (uint64_t)sqlite3_column_int64(st, 9),
				.path = sqlite3_column_blob(st, 10),
				.path_len = (size_t)sqlite3_column_bytes(st, 10),
				.score = sqlite3_column_double(st, 11),
			};
			(*emitted)++;
			int r = cb(arg, &h);
			if (r) {
				rc = r < 0 ? r : 0;
				src = SQLITE_DONE;
				stopped = true;
				break;
			}
		}
		if (!rc && src != SQLITE_DONE)
			rc = sq_err(s, src, "query");
		/* no row at all: the filters dropped every one taken, so
		 * whether there were more is not known */
		if (!rc && !stopped && top > 0)
			*more = taken < 0 || taken >= top;
	}
	sqlite3_finalize(st);
	return rc;
}

/* documents scored and sorted in the first round of a ranked query */
#define RANK_TOP 2000

/*
 * A query ranked by free words would score, join and sort every match to
 * return the best few. It first takes the RANK_TOP best documents of the
 * text index, ties broken by inode as the final order breaks them: those
 * are the first documents of the whole order, so every row they give is
 * exact and in place. Only a caller that reads past them all costs a
 * second round over every match, which skips the rows already given. Both
 * rounds read one snapshot.
 */
static int sq_query(struct idx_backend *be, const struct q_node *q, const struct idx_query_opts *o,
		    idx_hit_cb cb, void *arg)
{
	struct sq *s = SQ(be);
	bool topped = false;
	bool by_score = !o || (o->sort == IDX_SORT_SCORE && !o->reverse);
	struct sqlbuf *b = build_sql(s, q, o, by_score ? RANK_TOP : 0, &topped);
	if (!b)
		return -ENOMEM;
	bool txn = topped && sqlite3_get_autocommit(s->db);
	if (txn && exec(s, "BEGIN"))
		txn = false;
	long emitted = 0;
	bool more = false;
	int rc = run_rows(s, b, topped ? RANK_TOP : 0, 0, &emitted, &more, cb, arg);
	sqlbuf_free(b);
	free(b);
	if (!rc && more) {
		bool r2 = false;
		b = build_sql(s, q, o, 0, &r2);
		rc = b ? run_rows(s, b, 0, emitted, &emitted, &more, cb, arg) : -ENOMEM;
		if (b)
			sqlbuf_free(b);
		free(b);
	}
	if (txn)
		exec(s, "COMMIT");
	return rc;
}

static int sq_get(struct idx_backend *be, uint64_t ino, struct idx_hit *h)
{
	struct sq *s = SQ(be);
	sqlite3_stmt *st;
	int rc = prep(s, "SELECT d.mode, d.uid, d.gid, d.nlink, d.size, d.mtime,"
				    " (SELECT parent FROM names WHERE ino = d.ino LIMIT 1) FROM docs d WHERE d.ino = ?", &st);
	if (rc != SQLITE_OK)
		return sq_err(s, rc, "get");
	sqlite3_bind_int64(st, 1, (int64_t)ino);
	rc = sqlite3_step(st);
	int r = -ENOENT;
	if (rc == SQLITE_ROW) {
		*h = (struct idx_hit){
			.ino = ino,
			.mode = (uint32_t)sqlite3_column_int64(st, 0),
			.uid = (uint32_t)sqlite3_column_int64(st, 1),
			.gid = (uint32_t)sqlite3_column_int64(st, 2),
			.nlink = (uint32_t)sqlite3_column_int64(st, 3),
			.size = (uint64_t)sqlite3_column_int64(st, 4),
			.mtime = sqlite3_column_int64(st, 5),
			.parent = (uint64_t)sqlite3_column_int64(st, 6),
		};
		r = 0;
	} else if (rc != SQLITE_DONE) {
		r = sq_err(s, rc, "get");
	}
	done(s, st);
	return r;
}

static int sq_fields_of(struct idx_backend *be, uint64_t ino, idx_field_cb cb, void *arg)
{
	struct sq *s = SQ(be);
	sqlite3_stmt *st;
	int rc = prep(s, "SELECT k.key, a.num, a.str FROM attrs a JOIN keys k ON k.id = a.kid WHERE a.ino = ?1"
				    " UNION ALL SELECT 'tag', NULL, tag FROM tags WHERE ino = ?1", &st);
	if (rc != SQLITE_OK)
		return sq_err(s, rc, "fields");
	sqlite3_bind_int64(st, 1, (int64_t)ino);
	rc = 0;
	int src;
	while (!rc && (src = sqlite3_step(st)) == SQLITE_ROW) {
		double num = sqlite3_column_double(st, 1);
		bool has_num = sqlite3_column_type(st, 1) != SQLITE_NULL;
		rc = cb(arg, (const char *)sqlite3_column_text(st, 0), has_num ? &num : NULL,
			(const char *)sqlite3_column_text(st, 2));
	}
	done(s, st);
	return rc < 0 ? rc : 0;
}

static int sq_finish(struct idx_backend *b)
{
	struct sq *s = SQ(b);
	return s->bulk ? exec(s, schema_indexes) : 0;
}

static void sq_close(struct idx_backend *b)
{
	struct sq *s = SQ(b);
	if (!s)
		return;
	for (int i = 0; i < s->ncache; i++)
		sqlite3_finalize(s->cache[i].st);
	if (s->bulk)
		exec(s, "PRAGMA journal_mode=WAL");
	sqlite3_close_v2(s->db);
	keys_clear(s);
	free(s);
}

static const struct idx_backend_ops sqlite_ops = {
	.name = "sqlite",
	.begin = sq_begin,
	.commit = sq_commit,
	.rollback = sq_rollback,
	.put = sq_put,
	.lin_use = sq_lin_use,
	.lin_made = sq_lin_made,
	.del = sq_del,
	.move_subtree = sq_move_subtree,
	.paths_of = sq_paths_of,
	.cursor = sq_cursor,
	.set_past = sq_set_past,
	.past = sq_past,
	.get_volume = sq_get_volume,
	.set_volume = sq_set_volume,
	.has_attr = sq_has_attr,
	.query = sq_query,
	.get = sq_get,
	.count = sq_count,
	.fields_of = sq_fields_of,
	.finish = sq_finish,
	.close = sq_close,
};

static void unlink_sidecars(const char *path)
{
	char p[4200];
	snprintf(p, sizeof p, "%s-wal", path);
	unlink(p);
	snprintf(p, sizeof p, "%s-shm", path);
	unlink(p);
}

int idx_sqlite_install(const char *tmp, const char *path)
{
	struct idx_backend *live;
	char err[512] = "";
	if (idx_sqlite_open(path, 0, &live, err, sizeof err) == 0) {
		/* Others may have path open, with its -wal and -shm: renaming
		 * a new file under them would pair it with the old log. Copy it
		 * in instead, in one write transaction of the live database. */
		live->ops->close(live);
		sqlite3 *dst = NULL, *src = NULL;
		int rc = sqlite3_open_v2(path, &dst, SQLITE_OPEN_READWRITE, NULL);
		if (rc == SQLITE_OK)
			rc = sqlite3_open_v2(tmp, &src, SQLITE_OPEN_READONLY, NULL);
		if (rc == SQLITE_OK) {
			sqlite3_busy_timeout(dst, 30000);
			sqlite3_backup *bk = sqlite3_backup_init(dst, "main", src, "main");
			if (!bk) {
				rc = sqlite3_errcode(dst);
			} else {
				for (int tries = 0; tries < 600; tries++) {
					rc = sqlite3_backup_step(bk, -1);
					if (rc != SQLITE_BUSY && rc != SQLITE_LOCKED)
						break;
					mfs_sleep_us(50000);
				}
				sqlite3_backup_finish(bk);
				if (rc == SQLITE_DONE)
					rc = SQLITE_OK;
			}
		}
		if (rc != SQLITE_OK)
			log_error("cannot install the rebuilt index at %s: %s", path,
				  dst ? sqlite3_errmsg(dst) : "cannot open");
		sqlite3_close_v2(src);
		sqlite3_close_v2(dst);
		unlink(tmp);
		unlink_sidecars(tmp);
		return rc == SQLITE_OK ? 0 : (rc == SQLITE_FULL ? -ENOSPC : -EIO);
	}
	/* nothing usable there: its leftover log must not meet the new file */
	unlink_sidecars(path);
	if (rename(tmp, path) != 0) {
		int e = -errno;
		unlink(tmp);
		return e;
	}
	return 0;
}

long idx_sqlite_compare(const char *have, const char *want,
			void (*cb)(void *arg, const char *what, uint64_t ino, const char *detail), void *arg)
{
	sqlite3 *db;
	if (sqlite3_open_v2(have, &db, SQLITE_OPEN_READONLY, NULL) != SQLITE_OK) {
		sqlite3_close(db);
		return -EIO;
	}
	sqlite3_busy_timeout(db, 10000);
	sqlite3_stmt *st;
	char *sql = sqlite3_mprintf("ATTACH %Q AS want", want);
	int rc = sqlite3_exec(db, sql, NULL, NULL, NULL);
	sqlite3_free(sql);
	if (rc != SQLITE_OK) {
		sqlite3_close(db);
		return -EIO;
	}
	/* fields with their names rather than key ids, which differ by file */
	for (int i = 0; i < 2; i++) {
		sql = sqlite3_mprintf("CREATE TEMP VIEW %s_fields AS SELECT a.ino, k.key, a.num, a.str FROM %s.attrs a"
				      " JOIN %s.keys k ON k.id = a.kid", i ? "want" : "main", i ? "want" : "main",
				      i ? "want" : "main");
		rc = sqlite3_exec(db, sql, NULL, NULL, NULL);
		sqlite3_free(sql);
		if (rc != SQLITE_OK) {
			sqlite3_close(db);
			return -EIO;
		}
	}
	/* the version is left out: a document rebuilt from the same state
	 * may carry a newer one than the change that last touched it */
	static const struct {
		const char *what, *cols, *table;
	} parts[] = {
		{ "document", "ino, mode, uid, gid, nlink, size, mtime, ctime, lver", "docs" },
		{ "name", "ino, parent, quote(name), quote(path)", "names" },
		{ "field", "ino, key, num, str", "fields" },
		{ "tag", "ino, tag", "tags" },
		{ "generated-by word", "ino, word", "lin_gen" },
		{ "lineage use", "src, srcver, job, seq", "lin_use" },
		{ "lineage part", "ino, ver, job, n", "lin_made" },
	};
	long diffs = 0;
	for (size_t i = 0; i < MFS_ARRAY_LEN(parts); i++) {
		for (int dir = 0; dir < 2; dir++) {
			const char *a = dir ? "want" : "main", *b = dir ? "main" : "want";
			bool view = !strcmp(parts[i].table, "fields");
			sql = sqlite3_mprintf(view ? "SELECT %s FROM temp.%s_%s EXCEPT SELECT %s FROM temp.%s_%s"
						   : "SELECT %s FROM %s.%s EXCEPT SELECT %s FROM %s.%s",
					      parts[i].cols, a, parts[i].table, parts[i].cols, b, parts[i].table);
			rc = sqlite3_prepare_v2(db, sql, -1, &st, NULL);
			sqlite3_free(sql);
			if (rc != SQLITE_OK) {
				sqlite3_close(db);
				return -EIO;
			}
			while (sqlite3_step(st) == SQLITE_ROW) {
				char detail[1024];
				int n = snprintf(detail, sizeof detail, "%s %s:", dir ? "missing" : "stale", parts[i].what);
				for (int c = 1; c < sqlite3_column_count(st) && n < (int)sizeof detail - 1; c++) {
					const unsigned char *v = sqlite3_column_text(st, c);
					n += snprintf(detail + n, sizeof detail - (size_t)n, " %s", v ? (const char *)v : "null");
				}
				cb(arg, parts[i].what, (uint64_t)sqlite3_column_int64(st, 0), detail);
				diffs++;
			}
			sqlite3_finalize(st);
		}
	}
	sqlite3_close(db);
	return diffs;
}

/* Before SQLite's first use: no global count of allocated memory, which
 * every malloc would update under one mutex. */
static void sqlite_setup(void)
{
	sqlite3_config(SQLITE_CONFIG_MEMSTATUS, 0);
}

int idx_sqlite_open(const char *path, int flags, struct idx_backend **out, char *err, size_t errlen)
{
	static pthread_once_t once = PTHREAD_ONCE_INIT;
	pthread_once(&once, sqlite_setup);
	bool create = flags & IDX_OPEN_CREATE, ro = flags & IDX_OPEN_READONLY;
	if (!create && access(path, ro ? R_OK : R_OK | W_OK) != 0) {
		int e = errno;
		snprintf(err, errlen, "%s: %s", path, e == ENOENT ? "no index" : strerror(e));
		return e == ENOENT ? -ENOENT : -e;
	}
	struct sq *s = calloc(1, sizeof *s);
	if (!s)
		return -ENOMEM;
	s->base.ops = &sqlite_ops;
	s->readonly = ro;
	int oflags = ro ? SQLITE_OPEN_READONLY : SQLITE_OPEN_READWRITE | (create ? SQLITE_OPEN_CREATE : 0);
	int rc = sqlite3_open_v2(path, &s->db, oflags | SQLITE_OPEN_NOMUTEX, NULL);
	if (rc != SQLITE_OK) {
		snprintf(err, errlen, "%s: %s", path, s->db ? sqlite3_errmsg(s->db) : "cannot open");
		sq_close(&s->base);
		return -EIO;
	}
	/* a reader waits out the writer's commits rather than failing */
	sqlite3_busy_timeout(s->db, 10000);
	/* Pages through the kernel's cache instead of read() calls, and a
	 * writer's cache big enough for the upper levels of every B-tree of
	 * a million-file index: the default 2 MiB makes each insert a read. */
	exec(s, ro ? "PRAGMA mmap_size=4294967296" : "PRAGMA mmap_size=4294967296; PRAGMA cache_size=-262144;"
						     " PRAGMA temp_store=MEMORY");
	int r = 0;
	if (create) {
		r = exec(s, schema);
		if (!r && !(flags & IDX_OPEN_BULK))
			r = exec(s, schema_indexes);
		if (!r && (flags & IDX_OPEN_BULK)) {
			/* a file nobody reads until it is complete: no log, no
			 * syncs; it returns to WAL mode when closed */
			r = exec(s, "PRAGMA journal_mode=OFF; PRAGMA synchronous=OFF");
			s->bulk = true;
		}
		if (!r) {
			char v[16];
			snprintf(v, sizeof v, "%d", INDEX_FORMAT);
			r = meta_set(s, "format", v);
		}
	} else {
		char v[16];
		r = meta_get_text(s, "format", v, sizeof v);
		if (r || atoi(v) != INDEX_FORMAT) {
			snprintf(err, errlen, "%s: not a metafs index of format %d", path, INDEX_FORMAT);
			r = -EIO;
		} else if (!ro) {
			/* NORMAL: a crash may lose the last commits, never corrupt;
			 * the cursor is rolled back with them and they are redone */
			/* checkpoints every 32 MiB of log rather than 4: a page the
			 * batches keep changing is copied into the file once, and
			 * the log is cut back to 64 MiB after a big batch */
			r = exec(s, "PRAGMA synchronous=NORMAL; PRAGMA wal_autocheckpoint=8192;"
				    " PRAGMA journal_size_limit=67108864");
		}
		if (!r && !ro) {
			sqlite3_stmt *st;
			if (prep(s, "PRAGMA quick_check", &st) != SQLITE_OK ||
			    sqlite3_step(st) != SQLITE_ROW ||
			    strcmp((const char *)sqlite3_column_text(st, 0), "ok") != 0) {
				snprintf(err, errlen, "%s: the index is damaged", path);
				r = -EIO;
			}
			done(s, st);
		}
	}
	if (r) {
		if (!err[0] || create)
			snprintf(err, errlen, "%s: %s", path, sqlite3_errmsg(s->db));
		sq_close(&s->base);
		return r == -ENOSPC ? r : -EIO;
	}
	*out = &s->base;
	return 0;
}
