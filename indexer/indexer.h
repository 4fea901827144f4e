/* SPDX-License-Identifier: Apache-2.0 */
/*
 * indexer: follows a volume's changelog and keeps a search index of every
 * inode, through a backend interface (SQLite FTS5 embedded; others plug in
 * behind the same operations).
 *
 * The changelog says which inodes changed; the metadata store says what
 * they are now. Each document is written with the inode's version and a
 * backend keeps the newest, so replaying records, or seeing them out of
 * order, changes nothing. The cursor (last record applied) is committed
 * with the documents it covers.
 */
#ifndef METAFS_INDEXER_H
#define METAFS_INDEXER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "metadata.h"
#include "query.h"

/* ---------------------------------------------------------------- documents */

struct idx_name {
	uint64_t parent;
	char *name, *path; /* bytes as stored; path is absolute */
	size_t name_len, path_len;
};

struct idx_xattr {
	char *name;
	void *value;
	size_t len;
};

struct idx_doc {
	struct inode_rec in; /* ino, version, mode, sizes, owners, times */
	struct idx_name *names;
	size_t nnames;
	struct idx_xattr *xattrs;
	size_t nxattrs;
	/* lineage: the number of the current version (0: none), which the
	 * graph edges lead to (`derived-from:`, see lin_use), and the words
	 * of the command lines that wrote it and of their jobs
	 * (`generated-by:`) */
	uint64_t lin_version;
	char **gen;
	size_t ngen;
};

/* Loads d's lineage fields from the provenance records (see metadata.h). */
int idx_doc_lineage(struct store_txn *t, struct idx_doc *d);

void idx_doc_clear(struct idx_doc *d);

/*
 * What a document's user.* xattrs give the index, the same for every
 * backend: tags (user.xdg.tags entries and user.tag.* names, blanks trimmed,
 * empty and non-UTF-8 ones left out), field rows (a JSON value flattened to
 * dotted keys, arrays repeating the key: numbers as num alone, strings as
 * str, booleans as 1/0 and their word; any other UTF-8 value as text), and
 * the text of every UTF-8 value for free words.
 */
struct idx_field_sink {
	int (*tag)(void *arg, const char *tag, size_t len);
	int (*row)(void *arg, const char *key, const double *num, const char *str, size_t slen, bool boolean);
	int (*text)(void *arg, const char *text, size_t len);
	void *arg;
};
int idx_doc_analyze(const struct idx_doc *d, const struct idx_field_sink *s);

/* One result: a document under one of its names. */
struct idx_hit {
	uint64_t ino;
	uint32_t mode, uid, gid, nlink;
	uint64_t size;
	int64_t atime, mtime, ctime; /* ns */
	uint64_t parent;
	const char *path;
	size_t path_len;
	double score; /* higher is better */
};

enum idx_sort { IDX_SORT_SCORE, IDX_SORT_NAME, IDX_SORT_SIZE, IDX_SORT_MTIME, IDX_SORT_PATH };

struct idx_query_opts {
	enum idx_sort sort;
	bool reverse;
	const char *const *under; /* restrict to these subtrees (absolute paths); NULL-terminated */
	/* for a backend without the lineage graph: the files derived from
	 * ino, read from the volume's records (prov_descendants); NULL when
	 * there is no volume to read */
	int (*descendants)(void *arg, uint64_t ino, struct u64_vec *out);
	void *descendants_arg;
};

typedef int (*idx_hit_cb)(void *arg, const struct idx_hit *h);
/* an indexed field of a document: key is an xattr field ("annotations.bicycles") or "tag" */
typedef int (*idx_field_cb)(void *arg, const char *key, const double *num, const char *str);

/* ---------------------------------------------------------------- backends */

struct idx_backend;

/* How far the index has read past its cursor, where changelog ids have gaps
 * (a cluster): every id up to cursor was applied or given up; seen is the
 * highest id read; done, how many ids in (cursor, seen] were applied. As
 * the index only ever adds ids, a volume that has now exactly done records
 * in (cursor, seen] has all of them applied. */
struct idx_past {
	uint64_t cursor, seen, done;
};

struct idx_backend_ops {
	const char *name;
	int (*begin)(struct idx_backend *b);
	/* commits the batch and the cursor together */
	int (*commit)(struct idx_backend *b, uint64_t cursor);
	void (*rollback)(struct idx_backend *b);
	/* stores the document unless the stored one has a higher version */
	int (*put)(struct idx_backend *b, const struct idx_doc *d);
	/* the lineage graph's edges (struct prov_graph_sink), kept for
	 * `derived-from:`; a backend without them (NULL) asks the query's
	 * descendants callback instead */
	int (*lin_use)(struct idx_backend *b, uint64_t src, uint64_t src_version, uint64_t job, uint64_t seq);
	int (*lin_made)(struct idx_backend *b, uint64_t job, uint64_t n, uint64_t ino, uint64_t version);
	int (*del)(struct idx_backend *b, uint64_t ino, uint64_t version);
	/* rewrites the paths of everything below old_prefix (which ends in '/') */
	int (*move_subtree)(struct idx_backend *b, const char *old_prefix, size_t old_len,
			    const char *new_prefix, size_t new_len);
	/* the indexed paths of one inode */
	int (*paths_of)(struct idx_backend *b, uint64_t ino, name_cb cb, void *arg);
	int (*cursor)(struct idx_backend *b, uint64_t *seq);
	/* struct idx_past, stored in the batch committed next / read (-ENOENT:
	 * none stored); NULL where the backend does not keep it */
	int (*set_past)(struct idx_backend *b, const struct idx_past *p);
	int (*past)(struct idx_backend *b, struct idx_past *p);
	/* volume identity the index was built for */
	int (*get_volume)(struct idx_backend *b, char *uuid, size_t len);
	int (*set_volume)(struct idx_backend *b, const char *uuid);
	bool (*has_attr)(struct idx_backend *b, const char *name);
	/* calls cb for every hit in order; cb returns 1 to stop */
	int (*query)(struct idx_backend *b, const struct q_node *q, const struct idx_query_opts *o,
		     idx_hit_cb cb, void *arg);
	/* one document's attributes (for permission checks on ancestors) */
	int (*get)(struct idx_backend *b, uint64_t ino, struct idx_hit *out);
	/* the xattr fields and tags indexed for one document */
	int (*fields_of)(struct idx_backend *b, uint64_t ino, idx_field_cb cb, void *arg);
	/* how many documents */
	int (*count)(struct idx_backend *b, uint64_t *n);
	/* a bulk build (IDX_OPEN_BULK) has put every document: make the index
	 * ready for queries (may be NULL) */
	int (*finish)(struct idx_backend *b);
	/* makes every committed change visible to queries (may be NULL: they
	 * are at once) */
	int (*sync)(struct idx_backend *b);
	/* an index created with IDX_OPEN_CREATE and committed replaces the one
	 * in use (NULL: the caller puts a file in place, see idx_sqlite_install) */
	int (*install)(struct idx_backend *b);
	void (*close)(struct idx_backend *b);
};

struct idx_backend {
	const struct idx_backend_ops *ops;
};

#define IDX_OPEN_READONLY 0x1
#define IDX_OPEN_CREATE 0x2 /* start an empty index (the file must not exist) */
#define IDX_OPEN_BULK 0x4 /* a file being built: no syncs until it is renamed into place */

/* -ENOENT: no index there; -EIO: present but unusable (corrupt, another format) */
int idx_sqlite_open(const char *path, int flags, struct idx_backend **out, char *err, size_t errlen);

/*
 * Where a volume's index lives, as a locator string: a SQLite file path, or
 * "es:" and the path of the volume's search.conf for an Elasticsearch or
 * OpenSearch cluster (see index_es.c).
 */
#define IDX_ES_PREFIX "es:"
static inline bool idx_is_es(const char *locator)
{
	return locator[0] == 'e' && locator[1] == 's' && locator[2] == ':';
}
/* The file behind a locator: the SQLite file, or the search.conf. */
static inline const char *idx_locator_file(const char *locator)
{
	return idx_is_es(locator) ? locator + 3 : locator;
}
/* Opens either kind; flags as above. */
int idx_open(const char *locator, int flags, struct idx_backend **out, char *err, size_t errlen);
/* The Elasticsearch/OpenSearch backend; conf is a search.conf file. */
int idx_es_open(const char *conf, int flags, struct idx_backend **out, char *err, size_t errlen);

/* Shared by the backends: text with invalid UTF-8 bytes as U+FFFD; whether
 * bytes are UTF-8; a value as one FTS5 phrase (free words, name words). */
char *idx_to_utf8(const char *p, size_t len);
bool idx_is_utf8(const void *p, size_t len);
char *idx_fts_quote(const char *v);

/* Reports every difference between two SQLite indexes (what `have` holds
 * that `want` does not, and the reverse), one line each; returns the count
 * or a negative errno. */
long idx_sqlite_compare(const char *have, const char *want,
			void (*cb)(void *arg, const char *what, uint64_t ino, const char *detail), void *arg);

/* Puts the index built at tmp in place at path, safely for readers and a
 * writer that have path open: copied in one transaction when path is a
 * usable index, renamed over it otherwise. Removes tmp. */
int idx_sqlite_install(const char *tmp, const char *path);

/* ---------------------------------------------------------------- indexer */

struct indexer;

/* The index of a volume: index.sqlite in its local directory (the volume
 * directory, or for a cluster volume see mfs_local_dir), or, when
 * search.conf exists there, the cluster it names (a locator, see above). */
void indexer_default_path(const char *volume, char *out, size_t len);

/*
 * Opens the index at path for volume v, creating it (and building it from
 * the metadata) when it is missing, belongs to another volume, or is
 * corrupt. progress may be NULL.
 */
int indexer_open(struct mfs_volume *v, const char *path, struct indexer **out,
		 void (*progress)(void *arg, uint64_t done, uint64_t total), void *arg);
/* Applies up to max records past the cursor; *applied says how many. */
int indexer_step(struct indexer *ix, size_t max, size_t *applied);
/* Reopens the index if its file was deleted or replaced. */
int indexer_check_file(struct indexer *ix);
uint64_t indexer_cursor(struct indexer *ix);
void indexer_close(struct indexer *ix);

/* Builds a fresh index of volume v at path (replacing it atomically). */
int indexer_rebuild(struct mfs_volume *v, const char *path,
		    void (*progress)(void *arg, uint64_t done, uint64_t total), void *arg);

/* Runs an indexer thread inside the mount daemon. */
struct indexer_thread;
int indexer_thread_start(struct mfs_volume *v, const char *path, struct indexer_thread **out);
void indexer_thread_stop(struct indexer_thread *t);

#endif
