/* SPDX-License-Identifier: Apache-2.0 */
#include "indexer.h"
#include "common.h"

#include <errno.h>
#include <jansson.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#define OPS(t) ((t)->store->ops)
/* records an index transaction at most: each commit writes out FTS5
 * segments and the pages it changed, so a bigger one writes less a record;
 * a batch this size still commits in about a second at a million files */
#define BATCH 40000

struct indexer {
	struct mfs_volume *v;
	struct idx_backend *be;
	char *path;
	dev_t dev;
	ino_t file_ino;
	uint64_t cursor;
	/* past the cursor: holes waited for, and the records already
	 * applied beyond the first of them (sorted) */
	struct cl_holes holes;
	uint64_t *done;
	size_t ndone, capdone;
	uint64_t seen; /* the highest id read (struct idx_past) */
	int64_t settle_ns;
};

void indexer_default_path(const char *volume, char *out, size_t len)
{
	char dir[4096], conf[4200];
	mfs_local_dir(volume, dir, sizeof dir);
	snprintf(conf, sizeof conf, "%s/search.conf", dir);
	if (access(conf, F_OK) == 0)
		snprintf(out, len, IDX_ES_PREFIX "%s", conf);
	else
		snprintf(out, len, "%s/index.sqlite", dir);
}

int idx_open(const char *locator, int flags, struct idx_backend **out, char *err, size_t errlen)
{
	if (idx_is_es(locator))
		return idx_es_open(idx_locator_file(locator), flags, out, err, errlen);
	return idx_sqlite_open(locator, flags, out, err, errlen);
}

/* ---------------------------------------------------------------- what is indexed */

struct analyze {
	const struct idx_field_sink *s;
	int rc;
};

static void row(struct analyze *a, const char *key, const double *num, const char *str, size_t slen, bool boolean)
{
	if (!a->rc)
		a->rc = a->s->row(a->s->arg, key, num, str, slen, boolean);
}

/* JSON values become typed rows under dotted keys; arrays repeat the key. */
static void flatten(struct analyze *a, const char *key, json_t *j, int depth)
{
	if (a->rc || depth > 32 || strlen(key) > 1000)
		return;
	double num;
	switch (json_typeof(j)) {
	case JSON_OBJECT: {
		const char *k;
		json_t *v;
		json_object_foreach(j, k, v) {
			char *sub = malloc(strlen(key) + strlen(k) + 2);
			if (!sub) {
				a->rc = -ENOMEM;
				return;
			}
			sprintf(sub, "%s.%s", key, k);
			flatten(a, sub, v, depth + 1);
			free(sub);
		}
		break;
	}
	case JSON_ARRAY: {
		size_t i;
		json_t *v;
		json_array_foreach(j, i, v)
			flatten(a, key, v, depth + 1);
		break;
	}
	case JSON_STRING:
		row(a, key, NULL, json_string_value(j), json_string_length(j), false);
		break;
	case JSON_INTEGER:
	case JSON_REAL:
		/* no text: a quoted number finds it by value (q_number_text) */
		num = json_number_value(j);
		row(a, key, &num, NULL, 0, false);
		break;
	case JSON_TRUE:
	case JSON_FALSE:
		num = json_is_true(j) ? 1 : 0;
		row(a, key, &num, json_is_true(j) ? "true" : "false", json_is_true(j) ? 4 : 5, true);
		break;
	case JSON_NULL:
		break;
	}
}

static int tag(const struct idx_field_sink *s, const char *t, size_t len)
{
	while (len && (*t == ' ' || *t == '\t'))
		t++, len--;
	while (len && (t[len - 1] == ' ' || t[len - 1] == '\t'))
		len--;
	if (!len || !idx_is_utf8(t, len))
		return 0;
	return s->tag(s->arg, t, len);
}

int idx_doc_analyze(const struct idx_doc *d, const struct idx_field_sink *s)
{
	int rc = 0;
	for (size_t i = 0; i < d->nxattrs && !rc; i++) {
		const struct idx_xattr *x = &d->xattrs[i];
		if (strncmp(x->name, "user.", 5) != 0)
			continue;
		const char *key = x->name + 5;
		bool text_ok = idx_is_utf8(x->value, x->len);
		if (!strcmp(key, "xdg.tags") && text_ok) {
			const char *p = x->value, *end = p + x->len;
			while (p < end && !rc) {
				const char *comma = memchr(p, ',', (size_t)(end - p));
				const char *stop = comma ? comma : end;
				rc = tag(s, p, (size_t)(stop - p));
				p = stop + 1;
			}
		} else if (!strncmp(key, "tag.", 4) && key[4]) {
			rc = tag(s, key + 4, strlen(key + 4));
		}
		if (rc)
			break;
		struct analyze a = { s, 0 };
		json_error_t jerr;
		json_t *j = text_ok && x->len ? json_loadb(x->value, x->len, JSON_DECODE_ANY, &jerr) : NULL;
		if (j) {
			flatten(&a, key, j, 0);
			json_decref(j);
		} else if (text_ok) {
			/* not JSON (or empty): the value is text */
			row(&a, key, NULL, x->len ? x->value : "", x->len, false);
		}
		rc = a.rc;
		if (!rc && text_ok && x->len)
			rc = s->text(s->arg, x->value, strnlen(x->value, x->len));
	}
	return rc;
}

void idx_doc_clear(struct idx_doc *d)
{
	for (size_t i = 0; i < d->nnames; i++) {
		free(d->names[i].name);
		free(d->names[i].path);
	}
	for (size_t i = 0; i < d->nxattrs; i++) {
		free(d->xattrs[i].name);
		free(d->xattrs[i].value);
	}
	for (size_t i = 0; i < d->ngen; i++)
		free(d->gen[i]);
	free(d->names);
	free(d->xattrs);
	free(d->gen);
	memset(d, 0, sizeof *d);
}

/* ---------------------------------------------------------------- lineage */

static int add_word(struct idx_doc *d, size_t *cap, const char *w, size_t len)
{
	if (!len || !idx_is_utf8(w, len))
		return 0;
	for (size_t i = 0; i < d->ngen; i++)
		if (strlen(d->gen[i]) == len && !memcmp(d->gen[i], w, len))
			return 0;
	if (mfs_array_reserve(&d->gen, cap, d->ngen, sizeof *d->gen))
		return -ENOMEM;
	if (!(d->gen[d->ngen] = strndup(w, len)))
		return -ENOMEM;
	d->ngen++;
	return 0;
}

/* The words a command is found by: each argument as written, and the
 * base name of the program and of every argument that is a path. */
static int add_command_words(struct idx_doc *d, size_t *cap, const struct prov_proc *p)
{
	int rc = 0;
	if (p->exe) {
		const char *b = strrchr(p->exe, '/');
		b = b ? b + 1 : p->exe;
		rc = add_word(d, cap, b, strlen(b));
	}
	const char *a = p->argv, *end = p->argv ? p->argv + p->argv_len : NULL;
	for (int i = 0; !rc && a && a < end && i < 256; i++) {
		size_t n = strnlen(a, (size_t)(end - a));
		rc = add_word(d, cap, a, n);
		const char *b = memrchr(a, '/', n);
		if (!rc && b && b + 1 < a + n)
			rc = add_word(d, cap, b + 1, (size_t)(a + n - b - 1));
		a += n + 1;
	}
	return rc;
}

int idx_doc_lineage(struct store_txn *t, struct idx_doc *d)
{
	if (!S_ISREG(d->in.mode))
		return 0;
	uint64_t cur;
	int rc = prov_current(t, d->in.ino, &cur);
	if (rc)
		return rc == -ENOENT ? 0 : rc;
	struct prov_version pv;
	if ((rc = prov_version_get(t, d->in.ino, cur, &pv)))
		return rc == -ENOENT ? 0 : rc;
	size_t gcap = 0;
	for (size_t i = 0; i < pv.ngen && !rc; i++) {
		struct prov_proc p;
		if (prov_proc_get(t, pv.gen[i], &p))
			continue;
		rc = add_command_words(d, &gcap, &p);
		if (!rc && p.job && p.job != p.id) {
			struct prov_proc j;
			if (prov_proc_get(t, p.job, &j) == 0) {
				rc = add_command_words(d, &gcap, &j);
				prov_proc_free(&j);
			}
		}
		prov_proc_free(&p);
	}
	d->lin_version = cur;
	return rc;
}

/* ---------------------------------------------------------------- reading state */

/* Directory paths met while building one batch. */
struct path_cache {
	uint64_t ino[256];
	char *path[256];
	size_t len[256];
	unsigned n;
};

static void cache_clear(struct path_cache *c)
{
	for (unsigned i = 0; i < c->n && i < 256; i++)
		free(c->path[i]);
	c->n = 0;
}

struct first_name {
	uint64_t parent;
	char name[MFS_NAME_MAX + 1];
	size_t len;
	bool found;
};

static int first_name_cb(void *arg, uint64_t parent, const char *name, size_t len)
{
	struct first_name *f = arg;
	f->parent = parent;
	f->len = len > MFS_NAME_MAX ? MFS_NAME_MAX : len;
	memcpy(f->name, name, f->len);
	f->found = true;
	return 1;
}

/* The absolute path of a directory ("" for the root), malloc'd. */
static int dir_path(struct store_txn *t, struct path_cache *c, uint64_t dir, char **out, size_t *out_len)
{
	char *path = strdup("");
	size_t len = 0;
	uint64_t cur = dir;
	if (!path)
		return -ENOMEM;
	for (int depth = 0; cur != MFS_ROOT_INO; depth++) {
		if (depth > 4096) {
			free(path);
			return -ELOOP;
		}
		for (unsigned i = 0; i < c->n && i < 256; i++) {
			if (c->ino[i] == cur) {
				char *np = malloc(c->len[i] + len + 1);
				if (!np) {
					free(path);
					return -ENOMEM;
				}
				memcpy(np, c->path[i], c->len[i]);
				memcpy(np + c->len[i], path, len + 1);
				free(path);
				path = np;
				len += c->len[i];
				cur = MFS_ROOT_INO;
				break;
			}
		}
		if (cur == MFS_ROOT_INO)
			break;
		struct first_name f = { 0 };
		int rc = OPS(t)->names_of(t, cur, first_name_cb, &f);
		if (rc || !f.found) {
			free(path);
			return rc ? rc : -ENOENT; /* removed meanwhile */
		}
		char *np = malloc(f.len + 1 + len + 1);
		if (!np) {
			free(path);
			return -ENOMEM;
		}
		np[0] = '/';
		memcpy(np + 1, f.name, f.len);
		memcpy(np + 1 + f.len, path, len + 1);
		free(path);
		path = np;
		len += 1 + f.len;
		cur = f.parent;
	}
	if (c->n < 256 && dir != MFS_ROOT_INO) {
		c->ino[c->n] = dir;
		c->path[c->n] = strndup(path, len);
		c->len[c->n] = len;
		if (c->path[c->n])
			c->n++;
	}
	*out = path;
	*out_len = len;
	return 0;
}

struct doc_build {
	struct store_txn *t;
	struct path_cache *cache;
	struct idx_doc *d;
	int rc;
};

static int add_name(void *arg, uint64_t parent, const char *name, size_t len)
{
	struct doc_build *b = arg;
	struct idx_doc *d = b->d;
	size_t cap = d->nnames;
	if (mfs_array_reserve(&d->names, &cap, d->nnames, sizeof *d->names))
		return -ENOMEM;
	char *dp;
	size_t dlen;
	int rc = dir_path(b->t, b->cache, parent, &dp, &dlen);
	if (rc == -ENOENT)
		return 0; /* its directory is going away in the same changes */
	if (rc)
		return rc;
	struct idx_name *n = &d->names[d->nnames];
	n->parent = parent;
	n->name = malloc(len + 1);
	n->path = malloc(dlen + 1 + len + 1);
	if (!n->name || !n->path) {
		free(n->name);
		free(n->path);
		free(dp);
		return -ENOMEM;
	}
	memcpy(n->name, name, len);
	n->name[len] = '\0';
	n->name_len = len;
	memcpy(n->path, dp, dlen);
	n->path[dlen] = '/';
	memcpy(n->path + dlen + 1, name, len);
	n->path_len = dlen + 1 + len;
	n->path[n->path_len] = '\0';
	free(dp);
	d->nnames++;
	return 0;
}

struct xattr_names {
	char **v;
	size_t n, cap;
};

static int add_xattr_name(void *arg, const char *name, size_t len)
{
	struct xattr_names *l = arg;
	if (len < 5 || strncmp(name, "user.", 5) != 0)
		return 0; /* only user.* is searchable */
	if (mfs_array_reserve(&l->v, &l->cap, l->n, sizeof *l->v))
		return -ENOMEM;
	l->v[l->n] = strndup(name, len);
	return l->v[l->n++] ? 0 : -ENOMEM;
}

/* Loads an inode's current state; -ENOENT when it is gone or has no name. */
static int load_doc(struct store_txn *t, struct path_cache *c, uint64_t ino, struct idx_doc *d)
{
	memset(d, 0, sizeof *d);
	int rc = OPS(t)->inode_get(t, ino, &d->in, false);
	if (rc)
		return rc;
	if (d->in.nlink == 0)
		return -ENOENT;
	struct doc_build b = { t, c, d, 0 };
	if (ino != MFS_ROOT_INO && (rc = OPS(t)->names_of(t, ino, add_name, &b)))
		return rc;
	struct xattr_names l = { 0 };
	rc = OPS(t)->xattr_list(t, ino, add_xattr_name, &l);
	for (size_t i = 0; i < l.n; i++) {
		void *val = NULL;
		size_t len = 0;
		int xr = rc ? rc : OPS(t)->xattr_get(t, ino, l.v[i], &val, &len);
		if (xr == 0) {
			size_t cap = d->nxattrs;
			if (mfs_array_reserve(&d->xattrs, &cap, d->nxattrs, sizeof *d->xattrs)) {
				free(val);
				xr = -ENOMEM;
			} else {
				d->xattrs[d->nxattrs++] = (struct idx_xattr){ l.v[i], val, len };
				l.v[i] = NULL;
			}
		}
		if (xr && xr != -ENOENT && !rc)
			rc = xr;
		free(l.v[i]);
	}
	free(l.v);
	if (!rc)
		rc = idx_doc_lineage(t, d);
	return rc;
}

/* ---------------------------------------------------------------- applying */

struct pending {
	uint64_t ino;
	uint64_t version;
	bool dir_moved; /* a directory rename: its subtree's paths change */
};

struct batch {
	struct pending *v;
	size_t n, cap;
	/* where each inode sits in v: open addressing, slots hold index + 1 */
	size_t *slot;
	size_t nslot;
	uint64_t last_seq;
	size_t records;
	size_t max;
	struct indexer *ix;
	uint64_t expect; /* the id that should come next */
	uint64_t first; /* the oldest id the store still holds */
	int rc;
	uint64_t *applied; /* ids applied in this batch */
	size_t napplied, capapplied;
	/* lineage edges to add (backends that keep the graph): uses, as
	 * (proc, ino, version), and versions made, as (ino, version) */
	struct u64_vec uses, made;
};

static size_t *slot_of(struct batch *b, uint64_t ino)
{
	size_t mask = b->nslot - 1, i = (size_t)(ino * 0x9E3779B97F4A7C15ULL >> 17) & mask;
	while (b->slot[i] && b->v[b->slot[i] - 1].ino != ino)
		i = (i + 1) & mask;
	return &b->slot[i];
}

static int want(struct batch *b, uint64_t ino, uint64_t version, bool moved)
{
	if (!ino)
		return 0;
	if ((b->n + 1) * 2 > b->nslot) {
		size_t n = b->nslot ? b->nslot * 2 : 4096;
		size_t *ns = calloc(n, sizeof *ns);
		if (!ns)
			return -ENOMEM;
		free(b->slot);
		b->slot = ns;
		b->nslot = n;
		for (size_t i = 0; i < b->n; i++)
			*slot_of(b, b->v[i].ino) = i + 1;
	}
	size_t *sl = slot_of(b, ino);
	if (*sl) {
		struct pending *p = &b->v[*sl - 1];
		p->dir_moved |= moved;
		if (version > p->version)
			p->version = version;
		return 0;
	}
	if (mfs_array_reserve(&b->v, &b->cap, b->n, sizeof *b->v))
		return -ENOMEM;
	b->v[b->n++] = (struct pending){ ino, version, moved };
	*sl = b->n;
	return 0;
}

static bool done_has(const struct indexer *ix, uint64_t seq)
{
	size_t lo = 0, hi = ix->ndone;
	while (lo < hi) {
		size_t mid = (lo + hi) / 2;
		if (ix->done[mid] < seq)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo < ix->ndone && ix->done[lo] == seq;
}

static int collect(void *arg, const struct cl_rec *r)
{
	struct batch *b = arg;
	struct indexer *ix = b->ix;
	if (r->seq > b->expect && r->seq - 1 >= b->first) {
		uint64_t lo = b->expect > b->first ? b->expect : b->first;
		if ((b->rc = cl_holes_note(&ix->holes, lo, r->seq - 1, cl_mono_ns())))
			return b->rc;
	}
	if (r->seq >= b->expect)
		b->expect = r->seq + 1;
	if ((b->rc = cl_holes_fill(&ix->holes, r->seq)))
		return b->rc;
	if (done_has(ix, r->seq)) {
		/* applied in an earlier batch, while an older id was awaited */
		b->last_seq = r->seq;
		b->records++;
		return b->records >= b->max ? 1 : 0;
	}
	if (mfs_array_reserve(&b->applied, &b->capapplied, b->napplied, sizeof *b->applied))
		return b->rc = -ENOMEM;
	b->applied[b->napplied++] = r->seq;
	bool graph = ix->be->ops->lin_use && r->fversion;
	if (r->op == CL_PROCESS || r->op == CL_USED) {
		/* no document changes: a use is an edge of the graph */
		int rc = 0;
		if (graph && r->op == CL_USED && !(rc = u64_vec_push(&b->uses, r->proc)) &&
		    !(rc = u64_vec_push(&b->uses, r->ino)))
			rc = u64_vec_push(&b->uses, r->fversion);
		b->last_seq = r->seq;
		b->records++;
		return rc ? (b->rc = rc) : b->records >= b->max ? 1 : 0;
	}
	int rc = 0;
	if (graph && (r->op == CL_WRITE || r->op == CL_GENERATED) && !(rc = u64_vec_push(&b->made, r->ino)))
		rc = u64_vec_push(&b->made, r->fversion);
	if (!rc)
		rc = want(b, r->ino, r->version, r->op == CL_RENAME && (r->mode & S_IFMT) == S_IFDIR);
	if (!rc && r->replaced)
		rc = want(b, r->replaced, 0, false);
	/* the directories whose entries changed have new times and counts */
	if (!rc && r->parent)
		rc = want(b, r->parent, 0, false);
	if (!rc && r->new_parent)
		rc = want(b, r->new_parent, 0, false);
	b->last_seq = r->seq;
	b->records++;
	return rc ? rc : b->records >= b->max ? 1 : 0;
}

struct old_path {
	char *path;
	size_t len;
};

static int old_path_cb(void *arg, uint64_t parent, const char *path, size_t len)
{
	struct old_path *o = arg;
	o->path = malloc(len + 2);
	if (!o->path)
		return -ENOMEM;
	memcpy(o->path, path, len);
	o->path[len] = '/';
	o->path[len + 1] = '\0';
	o->len = len + 1;
	return 1;
}

/* A document read from the store ahead of its application. */
struct loaded {
	struct idx_doc d;
	int rc; /* 0, -ENOENT (gone), or an error */
};

static int apply_one(struct indexer *ix, const struct pending *p, struct loaded *l)
{
	struct idx_backend *be = ix->be;
	struct old_path old = { 0 };
	int rc = 0;
	if (p->dir_moved && (rc = be->ops->paths_of(be, p->ino, old_path_cb, &old)))
		return rc;
	struct idx_doc *d = &l->d;
	rc = l->rc;
	if (rc == -ENOENT) {
		rc = be->ops->del(be, p->ino, p->version ? p->version : UINT64_MAX - 1);
	} else if (!rc) {
		rc = be->ops->put(be, d);
		if (!rc && old.path && d->nnames == 1) {
			char *np = malloc(d->names[0].path_len + 2);
			if (!np)
				rc = -ENOMEM;
			else {
				memcpy(np, d->names[0].path, d->names[0].path_len);
				np[d->names[0].path_len] = '/';
				size_t nl = d->names[0].path_len + 1;
				if (nl != old.len || memcmp(np, old.path, nl))
					rc = be->ops->move_subtree(be, old.path, old.len, np, nl);
				free(np);
			}
		}
	}
	free(old.path);
	return rc;
}

/*
 * Reading documents from the store is about a third of the work of a batch
 * and needs nothing from the index: two threads read a batch's first chunk,
 * half each, and then one reads each next chunk while the current one is
 * applied, each in its own read transaction. Snapshots taken a moment apart
 * are harmless: whatever one of them misses comes later in the changelog,
 * after the batch's last record, and is applied again.
 */
struct load_job {
	struct store *s;
	const struct pending *const *v;
	struct loaded *out;
	size_t from, to;
	int rc;
};

static void *load_range(void *arg)
{
	struct load_job *j = arg;
	struct store_txn *t;
	if ((j->rc = j->s->ops->begin_read(j->s, &t)))
		return NULL;
	struct path_cache cache = { .n = 0 };
	for (size_t i = j->from; i < j->to; i++) {
		j->out[i].rc = load_doc(t, &cache, j->v[i]->ino, &j->out[i].d);
		if (j->out[i].rc && j->out[i].rc != -ENOENT) {
			j->rc = j->out[i].rc;
			break;
		}
	}
	cache_clear(&cache);
	j->s->ops->abort(t);
	return NULL;
}

static int load_docs(struct store *s, const struct pending *const *v, size_t n, struct loaded *out)
{
	struct load_job jobs[2] = {
		{ s, v, out, 0, n / 2, 0 },
		{ s, v, out, n / 2, n, 0 },
	};
	pthread_t th;
	bool two = n >= 64 && pthread_create(&th, NULL, load_range, &jobs[1]) == 0;
	if (!two)
		jobs[0].to = n;
	load_range(&jobs[0]);
	if (two)
		pthread_join(th, NULL);
	return jobs[0].rc ? jobs[0].rc : jobs[1].rc;
}

/* documents held in memory at once: xattr values can be large */
#define LOAD_CHUNK 512

/* Applies the batch: directories that moved first, so that the moves of
 * subtrees are done before the documents inside them are rewritten. While
 * one chunk is applied, a thread reads the next one from the store: the
 * index and the store each keep a core busy. */
static int apply_batch(struct indexer *ix, const struct batch *b)
{
	const struct pending **order = malloc((b->n + 1) * sizeof *order);
	struct loaded *bufs[2] = { calloc(LOAD_CHUNK, sizeof(struct loaded)), calloc(LOAD_CHUNK, sizeof(struct loaded)) };
	int rc = order && bufs[0] && bufs[1] ? 0 : -ENOMEM;
	size_t k = 0;
	for (int pass = 0; pass < 2 && !rc; pass++)
		for (size_t i = 0; i < b->n; i++)
			if ((pass == 0) == b->v[i].dir_moved)
				order[k++] = &b->v[i];
	if (!rc && k)
		rc = load_docs(ix->v->store, order, k < LOAD_CHUNK ? k : LOAD_CHUNK, bufs[0]);
	struct load_job next = { .s = ix->v->store };
	pthread_t th;
	for (size_t at = 0, c = 0; at < k && !rc; at += LOAD_CHUNK, c++) {
		size_t n = k - at < LOAD_CHUNK ? k - at : LOAD_CHUNK;
		struct loaded *docs = bufs[c & 1];
		bool ahead = false;
		if (at + n < k) {
			next.v = order + at + n;
			next.out = bufs[(c + 1) & 1];
			next.from = 0;
			next.to = k - at - n < LOAD_CHUNK ? k - at - n : LOAD_CHUNK;
			next.rc = 0;
			ahead = pthread_create(&th, NULL, load_range, &next) == 0;
			if (!ahead)
				load_range(&next);
		}
		for (size_t i = 0; i < n && !rc; i++)
			rc = apply_one(ix, order[at + i], &docs[i]);
		for (size_t i = 0; i < n; i++)
			idx_doc_clear(&docs[i].d);
		if (ahead)
			pthread_join(th, NULL);
		if (!rc && at + n < k)
			rc = next.rc;
	}
	/* a chunk loaded ahead of a failure */
	for (int i = 0; i < 2; i++)
		for (size_t j = 0; bufs[i] && j < LOAD_CHUNK; j++)
			idx_doc_clear(&bufs[i][j].d);
	free(order);
	free(bufs[0]);
	free(bufs[1]);
	return rc;
}

static int edge_use(void *arg, uint64_t src, uint64_t src_version, uint64_t job, uint64_t seq)
{
	struct idx_backend *be = arg;
	return be->ops->lin_use(be, src, src_version, job, seq);
}

static int edge_made(void *arg, uint64_t job, uint64_t n, uint64_t ino, uint64_t version)
{
	struct idx_backend *be = arg;
	return be->ops->lin_made(be, job, n, ino, version);
}

/* The batch's lineage edges, read from the store: those of each use and
 * each version made (a record that is gone adds none). */
static int apply_edges(struct indexer *ix, const struct batch *b)
{
	if (!b->uses.n && !b->made.n)
		return 0;
	struct store *s = ix->v->store;
	struct store_txn *t;
	int rc = s->ops->begin_read(s, &t);
	if (rc)
		return rc;
	struct prov_graph_sink sink = { edge_use, edge_made, ix->be };
	for (size_t i = 0; i + 3 <= b->uses.n && !rc; i += 3) {
		rc = prov_use_edge(t, b->uses.v[i], b->uses.v[i + 1], b->uses.v[i + 2], &sink);
		if (rc == -ENOENT)
			rc = 0;
	}
	for (size_t i = 0; i + 1 < b->made.n && !rc; i += 2) {
		rc = prov_version_edges(t, b->made.v[i], b->made.v[i + 1], &sink);
		if (rc == -ENOENT)
			rc = 0;
	}
	s->ops->abort(t);
	return rc;
}

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
	return x < y ? -1 : x > y;
}

/* The cursor this batch may commit: the last id read, or, while an older
 * id is still awaited, the one before it. Records applied past it are
 * remembered so that reading them again applies nothing twice. */
static int settle(struct indexer *ix, struct batch *b, uint64_t *safe)
{
	int64_t now = cl_mono_ns();
	for (size_t i = 0; i < ix->holes.n;) {
		struct cl_hole *h = &ix->holes.v[i];
		if (now - h->since_ns >= ix->settle_ns || h->hi < b->first) {
			ix->holes.v[i] = ix->holes.v[--ix->holes.n];
			continue;
		}
		if (h->lo <= *safe)
			*safe = h->lo - 1;
		i++;
	}
	if (*safe >= b->last_seq)
		return 0;
	for (size_t i = 0; i < b->napplied; i++) {
		if (b->applied[i] <= *safe)
			continue;
		if (mfs_array_reserve(&ix->done, &ix->capdone, ix->ndone, sizeof *ix->done))
			return -ENOMEM;
		ix->done[ix->ndone++] = b->applied[i];
	}
	if (ix->ndone)
		qsort(ix->done, ix->ndone, sizeof *ix->done, cmp_u64);
	return 0;
}

/* Drops what the cursor has passed (all, after a rebuild). */
static void forget_beyond(struct indexer *ix, bool all)
{
	size_t k = 0;
	for (size_t i = 0; i < ix->ndone; i++)
		if (!all && ix->done[i] > ix->cursor)
			ix->done[k++] = ix->done[i];
	ix->ndone = k;
	if (all) {
		ix->holes.n = 0;
		ix->seen = 0;
	}
}

int indexer_step(struct indexer *ix, size_t max, size_t *applied)
{
	struct store *s = ix->v->store;
	*applied = 0;
	if (ix->v->readonly) {
		int rc = s->ops->catch_up(s);
		if (rc)
			return rc;
	}
	/* a cheap look first: is anything past the cursor? */
	int rc = ix->be->ops->cursor(ix->be, &ix->cursor);
	uint64_t first, last;
	if (!rc)
		rc = s->ops->changelog_bounds(s, &first, &last);
	if (rc || last <= ix->cursor)
		return rc;
	/* The cursor is read again inside the write transaction: a rebuild
	 * installed meanwhile brings its own, and the batch must start there
	 * (read outside, records between the two cursors would be skipped). */
	if ((rc = ix->be->ops->begin(ix->be)))
		return rc;
	struct batch b = { .max = max ? max : BATCH, .ix = ix, .first = first };
	uint64_t before = ix->cursor;
	rc = ix->be->ops->cursor(ix->be, &ix->cursor);
	if (!rc && ix->cursor != before)
		forget_beyond(ix, true); /* a rebuild brought its own cursor */
	b.expect = ix->cursor + 1;
	if (!rc)
		rc = s->ops->changelog_read(s, ix->cursor + 1, collect, &b);
	if (!rc)
		rc = b.rc;
	if (!rc && b.records && b.napplied)
		rc = apply_batch(ix, &b);
	if (!rc)
		rc = apply_edges(ix, &b);
	uint64_t safe = b.last_seq;
	if (!rc && b.records)
		rc = settle(ix, &b, &safe);
	if (!rc && b.records && b.last_seq > ix->seen)
		ix->seen = b.last_seq;
	if (!rc && b.records && (safe > ix->cursor || b.napplied) && s->ops->changelog_gaps &&
	    ix->be->ops->set_past) {
		/* for `find --consistent`: what is applied past the cursor */
		struct idx_past p = { safe > ix->cursor ? safe : ix->cursor, 0, 0 };
		p.seen = ix->seen > p.cursor ? ix->seen : p.cursor;
		for (size_t i = 0; i < ix->ndone; i++)
			if (ix->done[i] > p.cursor && ix->done[i] <= p.seen)
				p.done++;
		rc = ix->be->ops->set_past(ix->be, &p);
	}
	if (!rc && b.records && safe > ix->cursor)
		rc = ix->be->ops->commit(ix->be, safe);
	else if (!rc && b.records && b.napplied)
		/* applied, but an older id is still awaited: the cursor stays */
		rc = ix->be->ops->commit(ix->be, ix->cursor);
	else
		ix->be->ops->rollback(ix->be);
	if (!rc && b.records) {
		if (safe > ix->cursor)
			ix->cursor = safe;
		forget_beyond(ix, false);
		*applied = b.napplied;
	} else if (rc) {
		/* nothing of this batch is in the index: the ids it noted as
		 * applied past the cursor must be read and applied again */
		forget_beyond(ix, true);
	}
	free(b.v);
	free(b.slot);
	free(b.applied);
	free(b.uses.v);
	free(b.made.v);
	return rc;
}

uint64_t indexer_cursor(struct indexer *ix)
{
	return ix->cursor;
}

/* ---------------------------------------------------------------- building */

static void uuid_text(const struct superblock *sb, char *out, size_t len)
{
	const unsigned char *u = sb->uuid;
	snprintf(out, len, "%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-%02x%02x%02x%02x%02x%02x", u[0], u[1], u[2],
		 u[3], u[4], u[5], u[6], u[7], u[8], u[9], u[10], u[11], u[12], u[13], u[14], u[15]);
}

/*
 * A rebuild reads the whole volume in three ordered scans (inodes, the
 * names index, xattrs), all in inode order, and merges them: far cheaper
 * than looking every inode's names and xattrs up one by one.
 */
struct rb_name {
	uint64_t ino, parent;
	size_t off, len;
};

struct rb_xattr {
	uint64_t ino;
	size_t noff, nlen, voff, vlen;
};

struct rb_dir {
	uint64_t ino;
	char *path;
	size_t len;
};

struct rebuild {
	struct mfs_volume *v;
	struct idx_backend *be;
	char *arena;
	size_t used, cap;
	struct rb_name *names;
	size_t nnames, capnames, ni;
	struct rb_xattr *xs;
	size_t nxs, capxs, xi;
	struct rb_dir *dirs; /* open addressing, by inode */
	size_t ndirs, capdirs;
	uint64_t done, total, last;
	void (*progress)(void *arg, uint64_t done, uint64_t total);
	void *parg;
	int rc;
	struct store_txn *t; /* reads lineage records */
};

static int arena_add(struct rebuild *r, const void *p, size_t len, size_t *off)
{
	if (r->used + len > r->cap) {
		size_t cap = r->cap ? r->cap * 2 : 1 << 20;
		while (cap < r->used + len)
			cap *= 2;
		char *na = realloc(r->arena, cap);
		if (!na)
			return -ENOMEM;
		r->arena = na;
		r->cap = cap;
	}
	memcpy(r->arena + r->used, p, len);
	*off = r->used;
	r->used += len;
	return 0;
}

static int rb_name_cb(void *arg, uint64_t ino, uint64_t parent, const char *name, size_t len)
{
	struct rebuild *r = arg;
	if (mfs_array_reserve(&r->names, &r->capnames, r->nnames, sizeof *r->names))
		return -ENOMEM;
	struct rb_name *n = &r->names[r->nnames];
	n->ino = ino;
	n->parent = parent;
	n->len = len;
	if (arena_add(r, name, len, &n->off))
		return -ENOMEM;
	r->nnames++;
	return 0;
}

static int rb_xattr_cb(void *arg, uint64_t ino, const char *name, size_t len, const void *val, size_t vlen)
{
	struct rebuild *r = arg;
	if (len < 5 || strncmp(name, "user.", 5) != 0)
		return 0;
	if (mfs_array_reserve(&r->xs, &r->capxs, r->nxs, sizeof *r->xs))
		return -ENOMEM;
	struct rb_xattr *x = &r->xs[r->nxs];
	x->ino = ino;
	x->nlen = len;
	x->vlen = vlen;
	if (arena_add(r, name, len, &x->noff) || arena_add(r, val, vlen, &x->voff))
		return -ENOMEM;
	r->nxs++;
	return 0;
}

static const struct rb_name *rb_first_name(struct rebuild *r, uint64_t ino)
{
	size_t lo = 0, hi = r->nnames;
	while (lo < hi) {
		size_t mid = (lo + hi) / 2;
		if (r->names[mid].ino < ino)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo < r->nnames && r->names[lo].ino == ino ? &r->names[lo] : NULL;
}

static struct rb_dir *rb_dir_slot(struct rebuild *r, uint64_t ino)
{
	size_t mask = r->capdirs - 1, i = (size_t)(ino * 0x9E3779B97F4A7C15ULL) & mask;
	while (r->dirs[i].ino && r->dirs[i].ino != ino)
		i = (i + 1) & mask;
	return &r->dirs[i];
}

/* A directory's path from the names in memory ("" for the root). */
static int rb_dir_path(struct rebuild *r, uint64_t dir, int depth, const char **path, size_t *len)
{
	if (dir == MFS_ROOT_INO) {
		*path = "";
		*len = 0;
		return 0;
	}
	if (depth > 4096)
		return -ELOOP;
	if (r->ndirs * 2 >= r->capdirs) {
		size_t cap = r->capdirs ? r->capdirs * 2 : 1024;
		struct rb_dir *old = r->dirs;
		size_t oldcap = r->capdirs;
		r->dirs = calloc(cap, sizeof *r->dirs);
		if (!r->dirs)
			return -ENOMEM;
		r->capdirs = cap;
		for (size_t i = 0; i < oldcap; i++)
			if (old[i].ino)
				*rb_dir_slot(r, old[i].ino) = old[i];
		free(old);
	}
	struct rb_dir *d = rb_dir_slot(r, dir);
	if (!d->ino) {
		const struct rb_name *n = rb_first_name(r, dir);
		if (!n)
			return -ENOENT;
		const char *pp;
		size_t pl;
		int rc = rb_dir_path(r, n->parent, depth + 1, &pp, &pl);
		if (rc)
			return rc;
		d = rb_dir_slot(r, dir); /* the table may have grown */
		char *p = malloc(pl + 1 + n->len + 1);
		if (!p)
			return -ENOMEM;
		memcpy(p, pp, pl);
		p[pl] = '/';
		memcpy(p + pl + 1, r->arena + n->off, n->len);
		p[pl + 1 + n->len] = '\0';
		d->ino = dir;
		d->path = p;
		d->len = pl + 1 + n->len;
		r->ndirs++;
	}
	*path = d->path;
	*len = d->len;
	return 0;
}

static int rb_inode_cb(void *arg, uint64_t ino, const struct inode_rec *in)
{
	struct rebuild *r = arg;
	if (!in || in->nlink == 0)
		return 0;
	struct idx_doc d = { .in = *in };
	int rc = 0;
	while (r->ni < r->nnames && r->names[r->ni].ino < ino)
		r->ni++;
	while (r->xi < r->nxs && r->xs[r->xi].ino < ino)
		r->xi++;
	size_t cap = 0;
	for (size_t i = r->ni; i < r->nnames && r->names[i].ino == ino && !rc; i++) {
		const struct rb_name *n = &r->names[i];
		const char *dp;
		size_t dl;
		int pr = rb_dir_path(r, n->parent, 0, &dp, &dl);
		if (pr == -ENOENT)
			continue;
		if (pr || mfs_array_reserve(&d.names, &cap, d.nnames, sizeof *d.names)) {
			rc = pr ? pr : -ENOMEM;
			break;
		}
		struct idx_name *o = &d.names[d.nnames++];
		*o = (struct idx_name){ .parent = n->parent, .name = strndup(r->arena + n->off, n->len),
					.name_len = n->len, .path = malloc(dl + 1 + n->len + 1),
					.path_len = dl + 1 + n->len };
		if (!o->name || !o->path) {
			rc = -ENOMEM;
			break;
		}
		memcpy(o->path, dp, dl);
		o->path[dl] = '/';
		memcpy(o->path + dl + 1, r->arena + n->off, n->len);
		o->path[o->path_len] = '\0';
	}
	cap = 0;
	for (size_t i = r->xi; i < r->nxs && r->xs[i].ino == ino && !rc; i++) {
		const struct rb_xattr *x = &r->xs[i];
		if (mfs_array_reserve(&d.xattrs, &cap, d.nxattrs, sizeof *d.xattrs)) {
			rc = -ENOMEM;
			break;
		}
		struct idx_xattr *o = &d.xattrs[d.nxattrs++];
		o->name = strndup(r->arena + x->noff, x->nlen);
		o->value = malloc(x->vlen ? x->vlen : 1);
		o->len = x->vlen;
		if (!o->name || !o->value) {
			rc = -ENOMEM;
			break;
		}
		memcpy(o->value, r->arena + x->voff, x->vlen);
	}
	if (!rc && d.nnames)
		rc = idx_doc_lineage(r->t, &d);
	if (!rc && (ino == MFS_ROOT_INO || d.nnames))
		rc = r->be->ops->put(r->be, &d);
	idx_doc_clear(&d);
	if (!rc && ++r->done % BATCH == 0) {
		/* bounded index transactions */
		rc = r->be->ops->commit(r->be, r->last);
		if (!rc)
			rc = r->be->ops->begin(r->be);
		if (r->progress)
			r->progress(r->parg, r->done, r->total);
	}
	return rc;
}

static int count_inode(void *arg, uint64_t ino, const struct inode_rec *in)
{
	if (in && in->nlink)
		(*(uint64_t *)arg)++;
	return 0;
}

int indexer_rebuild(struct mfs_volume *v, const char *path,
		    void (*progress)(void *arg, uint64_t done, uint64_t total), void *arg)
{
	struct store *s = v->store;
	/* a name of its own: a daemon and `metafs reindex` may both build (a
	 * cluster index gets a new concrete index, put behind the alias by
	 * install) */
	static _Atomic unsigned serial;
	bool es = idx_is_es(path);
	char tmp[4096], err[512] = "";
	if (es)
		snprintf(tmp, sizeof tmp, "%s", path);
	else
		snprintf(tmp, sizeof tmp, "%s.new.%d.%u", path, (int)getpid(), serial++);
	if (v->readonly && s->ops->catch_up(s))
		return -EIO;
	/* changes after this point are applied again by the indexer: harmless,
	 * a document is only ever replaced by its current state */
	uint64_t first;
	struct rebuild r = { .v = v, .progress = progress, .parg = arg };
	int rc = s->ops->changelog_bounds(s, &first, &r.last);
	if (!rc && progress)
		rc = s->ops->inode_scan(s, count_inode, &r.total);
	if (!rc)
		rc = s->ops->names_scan(s, rb_name_cb, &r);
	if (!rc)
		rc = s->ops->xattr_scan(s, rb_xattr_cb, &r);
	if (!rc && (rc = idx_open(tmp, IDX_OPEN_CREATE | IDX_OPEN_BULK, &r.be, err, sizeof err)))
		log_error("cannot create the index %s: %s", idx_locator_file(tmp), err);
	if (!rc) {
		char uuid[40];
		uuid_text(&v->sb, uuid, sizeof uuid);
		rc = r.be->ops->begin(r.be);
		if (!rc)
			rc = r.be->ops->set_volume(r.be, uuid);
		if (!rc)
			rc = s->ops->begin_read(s, &r.t);
		if (!rc) {
			rc = s->ops->inode_scan(s, rb_inode_cb, &r);
			if (!rc && r.be->ops->lin_use) {
				struct prov_graph_sink sink = { edge_use, edge_made, r.be };
				rc = prov_graph_scan(r.t, &sink);
			}
			s->ops->abort(r.t);
		}
		if (!rc && r.be->ops->finish)
			rc = r.be->ops->finish(r.be);
		if (!rc)
			rc = r.be->ops->commit(r.be, r.last);
		else
			r.be->ops->rollback(r.be);
		if (!rc && r.be->ops->install)
			rc = r.be->ops->install(r.be);
		r.be->ops->close(r.be);
	}
	if (progress && !rc)
		progress(arg, r.total, r.total);
	for (size_t i = 0; i < r.capdirs; i++)
		free(r.dirs[i].path);
	free(r.dirs);
	free(r.names);
	free(r.xs);
	free(r.arena);
	if (es)
		return rc;
	if (!rc)
		return idx_sqlite_install(tmp, path);
	unlink(tmp);
	return rc;
}

/* ---------------------------------------------------------------- open */

static int file_id(const char *path, dev_t *dev, ino_t *ino)
{
	struct stat st;
	if (stat(path, &st) != 0)
		return -errno;
	*dev = st.st_dev;
	*ino = st.st_ino;
	return 0;
}

static int open_existing(struct indexer *ix, char *err, size_t errlen)
{
	int rc = idx_open(ix->path, 0, &ix->be, err, errlen);
	if (rc)
		return rc;
	char uuid[40], have[64] = "";
	uuid_text(&ix->v->sb, uuid, sizeof uuid);
	rc = ix->be->ops->get_volume(ix->be, have, sizeof have);
	if (rc && rc != -ENOENT && idx_is_es(ix->path)) {
		/* the cluster did not answer: not a reason to build anew */
		snprintf(err, errlen, "cannot read the index state: %s", strerror(-rc));
		ix->be->ops->close(ix->be);
		ix->be = NULL;
		return rc;
	}
	if (!rc && strcmp(have, uuid) != 0 && idx_is_es(ix->path)) {
		/* an index name shared by mistake: rebuilding would destroy
		 * another volume's index, and it would rebuild ours in turn */
		snprintf(err, errlen,
			 "the index named in %s belongs to volume %s, not to this one (%s): name another index there, "
			 "or run metafs reindex to replace it",
			 idx_locator_file(ix->path), have, uuid);
		ix->be->ops->close(ix->be);
		ix->be = NULL;
		return -EEXIST;
	}
	if (rc || strcmp(have, uuid) != 0) {
		snprintf(err, errlen, "%s was built for another volume", idx_locator_file(ix->path));
		ix->be->ops->close(ix->be);
		ix->be = NULL;
		return -EIO;
	}
	if ((rc = ix->be->ops->cursor(ix->be, &ix->cursor)) ||
	    (!idx_is_es(ix->path) && (rc = file_id(ix->path, &ix->dev, &ix->file_ino)))) {
		ix->be->ops->close(ix->be);
		ix->be = NULL;
	}
	return rc;
}

static int open_or_rebuild(struct indexer *ix, void (*progress)(void *, uint64_t, uint64_t), void *arg)
{
	char err[512] = "";
	int rc = open_existing(ix, err, sizeof err);
	if (rc == 0)
		return 0;
	bool es = idx_is_es(ix->path);
	if (es && (rc == -EACCES || rc == -EEXIST || (rc != -ENOENT && !strstr(err, "another volume")))) {
		/* a cluster that cannot be reached or refuses us, or an index of
		 * another volume: not a reason to build a new index (the caller
		 * tries again; metafs reindex replaces it on purpose) */
		log_error("the search cluster of %s: %s", idx_locator_file(ix->path), err);
		return rc;
	}
	if (rc != -ENOENT)
		log_warn("index %s is unusable (%s); rebuilding it from the metadata", idx_locator_file(ix->path), err);
	else
		log_info("building the index %s from the metadata", idx_locator_file(ix->path));
	if (rc != -ENOENT && !es) {
		char bad[4200];
		snprintf(bad, sizeof bad, "%s.damaged", ix->path);
		rename(ix->path, bad);
	}
	rc = indexer_rebuild(ix->v, ix->path, progress, arg);
	if (rc)
		return rc;
	return open_existing(ix, err, sizeof err);
}

int indexer_open(struct mfs_volume *v, const char *path, struct indexer **out,
		 void (*progress)(void *arg, uint64_t done, uint64_t total), void *arg)
{
	struct indexer *ix = calloc(1, sizeof *ix);
	if (!ix)
		return -ENOMEM;
	ix->settle_ns = cl_settle_ns();
	ix->v = v;
	ix->path = strdup(path);
	int rc = ix->path ? open_or_rebuild(ix, progress, arg) : -ENOMEM;
	if (rc) {
		free(ix->path);
		free(ix);
		return rc;
	}
	*out = ix;
	return 0;
}

int indexer_check_file(struct indexer *ix)
{
	dev_t dev;
	ino_t ino;
	if (idx_is_es(ix->path))
		return 0;
	if (file_id(ix->path, &dev, &ino) == 0 && dev == ix->dev && ino == ix->file_ino)
		return 0;
	log_warn("index %s was removed or replaced; opening it again", ix->path);
	ix->be->ops->close(ix->be);
	ix->be = NULL;
	return open_or_rebuild(ix, NULL, NULL);
}

void indexer_close(struct indexer *ix)
{
	if (!ix)
		return;
	free(ix->holes.v);
	free(ix->done);
	if (ix->be)
		ix->be->ops->close(ix->be);
	free(ix->path);
	free(ix);
}

/* ---------------------------------------------------------------- daemon thread */

struct indexer_thread {
	pthread_t th;
	struct mfs_volume *v;
	char *path;
	pthread_mutex_t lock;
	pthread_cond_t cond;
	bool stop;
};

static void *indexer_main(void *arg)
{
	struct indexer_thread *it = arg;
	struct indexer *ix = NULL;
	int64_t last_check = 0;
	unsigned idle_ms = 0;
	/* The filesystem's requests come first: on a busy volume the index
	 * trails by a moment and catches up when the requests pause, instead
	 * of taking a quarter of the CPU from every create and rename. (Linux
	 * gives each thread its own nice value.) */
	if (setpriority(PRIO_PROCESS, (id_t)syscall(SYS_gettid), 10) != 0)
		log_warn("the indexer thread keeps normal priority: %s", strerror(errno));
	for (;;) {
		pthread_mutex_lock(&it->lock);
		bool stop = it->stop;
		pthread_mutex_unlock(&it->lock);
		if (!ix) {
			int rc = indexer_open(it->v, it->path, &ix, NULL, NULL);
			if (rc) {
				log_error("the indexer cannot open %s: %s; retrying", it->path, strerror(-rc));
				ix = NULL;
				if (stop)
					break;
				idle_ms = 2000;
				goto wait;
			}
		}
		size_t applied = 0;
		int rc = indexer_step(ix, BATCH, &applied);
		if (rc) {
			/* MFS_ERETRY: the store lost its server, or a conflict;
			 * not an errno to print */
			if (rc == MFS_ERETRY)
				log_warn("the indexer stopped at record %llu: the metadata store is "
					 "unavailable (a failover?); retrying",
					 (unsigned long long)indexer_cursor(ix));
			else
				log_error("the indexer stopped at record %llu: %s; retrying",
					  (unsigned long long)indexer_cursor(ix), strerror(-rc));
			indexer_close(ix);
			ix = NULL;
			idle_ms = 1000;
			if (stop)
				break;
			goto wait;
		}
		if (applied == BATCH)
			continue; /* a full batch: more is waiting */
		if (stop && !applied)
			break;
		int64_t now = mfs_now_ns();
		if (now - last_check > 1000000000LL) {
			last_check = now;
			if (indexer_check_file(ix)) {
				indexer_close(ix);
				ix = NULL;
			}
		}
		/* caught up: look again soon, so that a change is findable well
		 * within a second, and late enough that a busy volume's changes
		 * reach the index in batches rather than one transaction each
		 * (for a cluster, a few requests a thousand changes; its own
		 * refresh makes changes searchable once a second anyway) */
		idle_ms = idx_is_es(it->path) ? 250 : 20;
wait:
		pthread_mutex_lock(&it->lock);
		if (!it->stop) {
			struct timespec ts;
			clock_gettime(CLOCK_REALTIME, &ts);
			ts.tv_nsec += (long)idle_ms * 1000000L;
			ts.tv_sec += ts.tv_nsec / 1000000000L;
			ts.tv_nsec %= 1000000000L;
			pthread_cond_timedwait(&it->cond, &it->lock, &ts);
		}
		pthread_mutex_unlock(&it->lock);
	}
	indexer_close(ix);
	return NULL;
}

int indexer_thread_start(struct mfs_volume *v, const char *path, struct indexer_thread **out)
{
	struct indexer_thread *it = calloc(1, sizeof *it);
	if (!it)
		return -ENOMEM;
	it->v = v;
	it->path = strdup(path);
	pthread_mutex_init(&it->lock, NULL);
	pthread_cond_init(&it->cond, NULL);
	if (!it->path || pthread_create(&it->th, NULL, indexer_main, it) != 0) {
		free(it->path);
		free(it);
		return -ENOMEM;
	}
	*out = it;
	return 0;
}

void indexer_thread_stop(struct indexer_thread *it)
{
	if (!it)
		return;
	pthread_mutex_lock(&it->lock);
	it->stop = true;
	pthread_cond_signal(&it->cond);
	pthread_mutex_unlock(&it->lock);
	pthread_join(it->th, NULL);
	pthread_mutex_destroy(&it->lock);
	pthread_cond_destroy(&it->cond);
	free(it->path);
	free(it);
}
