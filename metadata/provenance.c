/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Provenance records over the store's prov_* operations.
 *
 * Keys (integers big-endian, so a prefix lists in order):
 *   p|proc                          the process
 *   v|ino|version                   the version: size, mtime, digest, name,
 *                                   writers, and what it derives from: a list
 *                                   of (job, n), the first n uses of each job
 *   u|proc|ino|version              proc used ino@version -> proc, time, job, seq
 *   U|job|seq                       the job's seq-th use: ino, version, user
 *                                   (the process of the job that used it), time
 *   R|src|src_version|job|seq       the other way: the job's seq-th use was of
 *                                   src@src_version -> user, time
 *   g|job|ino|version               job had a part in ino@version -> n, the
 *                                   number of its uses the version derives from
 * A file's newest version is its last v record. Each record is written
 * once: a close writes one v record and one g record per job however many
 * files the jobs had used, and a use writes one record of each kind, so
 * the records grow with what happened, never with its square (a `cp -r`
 * inside the volume that reads n files and writes n derives each output
 * from every input read before it, but stores that as n counts, not n^2
 * edges). A step up the graph is a read of the version and a scan of each
 * job's uses up to its count; a step down is a scan of the jobs that used
 * the version and of the versions each had a part in. Neither depends on
 * the size of the volume.
 *
 * Records of the layout earlier versions of metafs wrote are still read:
 *   c|ino                           the newest version number (no longer
 *                                   written: the last v record tells)
 *   d|ino|version                   a version's sources, listed: a count, then
 *                                   (src, src_version, user) each; a v record
 *                                   without the list of jobs has them here
 *   d|ino|version|src|src_version   one edge per record, and
 *   r|src|src_version|ino|version   the same edge the other way
 *   R|src|src_version|job           a job used src@src_version (no seq)
 *   g|job|ino|version               (empty) a part in a version listed in d
 */
#include "metadata.h"
#include "provenance.h"
#include "blockstore.h"
#include "common.h"

#include <errno.h>
#include <openssl/evp.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#define OPS(t) ((t)->store->ops)

/* ---------------------------------------------------------------- encoding */

struct enc {
	unsigned char *p;
	size_t n, cap;
	bool failed;
};

static void enc_bytes(struct enc *e, const void *b, size_t len)
{
	if (e->failed)
		return;
	if (e->n + len > e->cap) {
		size_t cap = e->cap ? e->cap : 256;
		while (cap < e->n + len)
			cap *= 2;
		unsigned char *p = realloc(e->p, cap);
		if (!p) {
			e->failed = true;
			return;
		}
		e->p = p;
		e->cap = cap;
	}
	if (len)
		memcpy(e->p + e->n, b, len);
	e->n += len;
}

static void enc_u64(struct enc *e, uint64_t v)
{
	unsigned char b[8];
	put_le64(b, v);
	enc_bytes(e, b, 8);
}

static void enc_u32(struct enc *e, uint32_t v)
{
	unsigned char b[4];
	put_le32(b, v);
	enc_bytes(e, b, 4);
}

static void enc_str(struct enc *e, const char *s, size_t len)
{
	enc_u32(e, (uint32_t)len);
	enc_bytes(e, s, len);
}

struct dec {
	const unsigned char *p;
	size_t n;
	bool bad;
};

static const unsigned char *dec_bytes(struct dec *d, size_t len)
{
	if (d->bad || d->n < len) {
		d->bad = true;
		return NULL;
	}
	const unsigned char *p = d->p;
	d->p += len;
	d->n -= len;
	return p;
}

static uint64_t dec_u64(struct dec *d)
{
	const unsigned char *p = dec_bytes(d, 8);
	return p ? get_le64(p) : 0;
}

static uint32_t dec_u32(struct dec *d)
{
	const unsigned char *p = dec_bytes(d, 4);
	return p ? get_le32(p) : 0;
}

static char *dec_str(struct dec *d, size_t *len)
{
	uint32_t n = dec_u32(d);
	const unsigned char *p = dec_bytes(d, n);
	if (!p)
		return NULL;
	char *s = malloc((size_t)n + 1);
	if (!s) {
		d->bad = true;
		return NULL;
	}
	memcpy(s, p, n);
	s[n] = '\0';
	if (len)
		*len = n;
	return s;
}

static size_t key_n(unsigned char *k, char kind, const uint64_t *v, size_t n)
{
	k[0] = (unsigned char)kind;
	for (size_t i = 0; i < n; i++)
		put_be64(k + 1 + 8 * i, v[i]);
	return 1 + 8 * n;
}

/* ---------------------------------------------------------------- processes */

void prov_proc_free(struct prov_proc *p)
{
	if (!p)
		return;
	free(p->exe);
	free(p->cwd);
	free(p->argv);
	p->exe = p->cwd = p->argv = NULL;
}

static int proc_put(struct store_txn *t, const struct prov_proc *p)
{
	struct enc e = { 0 };
	enc_u32(&e, p->pid);
	enc_u32(&e, p->ppid);
	enc_u32(&e, p->uid);
	enc_u32(&e, p->gid);
	enc_u64(&e, (uint64_t)p->start_ns);
	enc_u64(&e, p->parent);
	enc_u64(&e, (uint64_t)p->parent_start_ns);
	enc_u64(&e, p->job);
	enc_str(&e, p->exe ? p->exe : "", p->exe ? strlen(p->exe) : 0);
	enc_str(&e, p->cwd ? p->cwd : "", p->cwd ? strlen(p->cwd) : 0);
	enc_str(&e, p->argv ? p->argv : "", p->argv ? p->argv_len : 0);
	if (e.failed) {
		free(e.p);
		return -ENOMEM;
	}
	unsigned char k[PROV_KEY_MAX];
	int rc = OPS(t)->prov_put(t, k, key_n(k, 'p', &p->id, 1), e.p, e.n);
	free(e.p);
	if (rc)
		return rc;
	struct cl_rec cl = {
		.time_ns = mfs_now_ns(),
		.op = CL_PROCESS,
		.uid = p->uid,
		.gid = p->gid,
		.pid = p->pid,
		.proc = p->id,
		.name = p->exe,
		.name_len = p->exe ? (uint32_t)strlen(p->exe) : 0,
		.value = p->argv,
		.value_len = (uint32_t)p->argv_len,
	};
	return OPS(t)->changelog_append(t, &cl);
}

int prov_proc_get(struct store_txn *t, uint64_t id, struct prov_proc *out)
{
	memset(out, 0, sizeof *out);
	unsigned char k[PROV_KEY_MAX];
	void *val;
	size_t len;
	int rc = OPS(t)->prov_get(t, k, key_n(k, 'p', &id, 1), &val, &len, false);
	if (rc)
		return rc;
	struct dec d = { val, len, false };
	out->id = id;
	out->pid = dec_u32(&d);
	out->ppid = dec_u32(&d);
	out->uid = dec_u32(&d);
	out->gid = dec_u32(&d);
	out->start_ns = (int64_t)dec_u64(&d);
	out->parent = dec_u64(&d);
	out->parent_start_ns = (int64_t)dec_u64(&d);
	out->job = dec_u64(&d);
	out->exe = dec_str(&d, NULL);
	out->cwd = dec_str(&d, NULL);
	out->argv = dec_str(&d, &out->argv_len);
	free(val);
	if (d.bad) {
		prov_proc_free(out);
		return -EIO;
	}
	return 0;
}

/* ---------------------------------------------------------------- versions */

/* A v record: the version, then the jobs whose uses it derives from. */
static int version_put(struct store_txn *t, const struct prov_version *pv, const struct prov_job_uses *jobs,
		       size_t njobs)
{
	struct enc e = { 0 };
	enc_u64(&e, pv->inode_version);
	enc_u64(&e, pv->size);
	enc_u64(&e, (uint64_t)pv->mtime.tv_sec);
	enc_u32(&e, (uint32_t)pv->mtime.tv_nsec);
	enc_u64(&e, (uint64_t)pv->time_ns);
	unsigned char has = pv->has_digest;
	enc_bytes(&e, &has, 1);
	if (has)
		enc_bytes(&e, pv->digest, PROV_DIGEST_LEN);
	enc_u64(&e, pv->parent);
	enc_str(&e, pv->name, strlen(pv->name));
	enc_u32(&e, (uint32_t)pv->ngen);
	for (size_t i = 0; i < pv->ngen; i++)
		enc_u64(&e, pv->gen[i]);
	enc_u32(&e, (uint32_t)njobs);
	for (size_t i = 0; i < njobs; i++) {
		enc_u64(&e, jobs[i].job);
		enc_u64(&e, jobs[i].uses);
	}
	if (e.failed) {
		free(e.p);
		return -ENOMEM;
	}
	unsigned char k[PROV_KEY_MAX];
	uint64_t kv[2] = { pv->ino, pv->version };
	int rc = OPS(t)->prov_put(t, k, key_n(k, 'v', kv, 2), e.p, e.n);
	free(e.p);
	return rc;
}

/* Decodes a v record into pv; *rest (when asked) is what follows the
 * writers: the list of jobs, empty in records of the older layout. */
static int version_decode(uint64_t ino, uint64_t version, const void *val, size_t len,
			  struct prov_version *pv, struct dec *rest)
{
	memset(pv, 0, sizeof *pv);
	struct dec d = { val, len, false };
	pv->ino = ino;
	pv->version = version;
	pv->inode_version = dec_u64(&d);
	pv->size = dec_u64(&d);
	pv->mtime.tv_sec = (time_t)dec_u64(&d);
	pv->mtime.tv_nsec = (long)dec_u32(&d);
	pv->time_ns = (int64_t)dec_u64(&d);
	const unsigned char *has = dec_bytes(&d, 1);
	if (has && *has) {
		const unsigned char *dg = dec_bytes(&d, PROV_DIGEST_LEN);
		if (dg) {
			memcpy(pv->digest, dg, PROV_DIGEST_LEN);
			pv->has_digest = true;
		}
	}
	pv->parent = dec_u64(&d);
	uint32_t nl = dec_u32(&d);
	const unsigned char *name = dec_bytes(&d, nl);
	if (name && nl <= MFS_NAME_MAX) {
		memcpy(pv->name, name, nl);
		pv->name[nl] = '\0';
	} else {
		d.bad = true;
	}
	uint32_t ngen = dec_u32(&d);
	for (uint32_t i = 0; i < ngen && !d.bad; i++) {
		uint64_t g = dec_u64(&d);
		if (pv->ngen < MFS_ARRAY_LEN(pv->gen))
			pv->gen[pv->ngen++] = g;
	}
	if (rest)
		*rest = d;
	return d.bad ? -EIO : 0;
}

struct last_arg {
	uint64_t version;
	bool found;
};

static int last_version_kv(void *arg, const void *key, size_t klen, const void *val, size_t len)
{
	struct last_arg *a = arg;
	if (klen == 17) {
		a->version = get_be64((const unsigned char *)key + 9);
		a->found = true;
	}
	return 0;
}

int prov_current(struct store_txn *t, uint64_t ino, uint64_t *version)
{
	unsigned char k[PROV_KEY_MAX];
	size_t kl = key_n(k, 'v', &ino, 1);
	struct last_arg a = { 0, false };
	int rc = OPS(t)->prov_last ? OPS(t)->prov_last(t, k, kl, last_version_kv, &a)
				   : OPS(t)->prov_scan(t, k, kl, last_version_kv, &a);
	if (rc)
		return rc;
	if (!a.found)
		return -ENOENT;
	*version = a.version;
	return 0;
}

/* The v record of ino@version, malloc'd in *val. */
static int version_raw(struct store_txn *t, uint64_t ino, uint64_t version, void **val, size_t *len)
{
	unsigned char k[PROV_KEY_MAX];
	uint64_t kv[2] = { ino, version };
	return OPS(t)->prov_get(t, k, key_n(k, 'v', kv, 2), val, len, false);
}

int prov_version_get(struct store_txn *t, uint64_t ino, uint64_t version, struct prov_version *out)
{
	void *val;
	size_t len;
	int rc = version_raw(t, ino, version, &val, &len);
	if (rc)
		return rc;
	rc = version_decode(ino, version, val, len, out, NULL);
	free(val);
	return rc;
}

struct versions_arg {
	uint64_t ino;
	prov_version_cb cb;
	void *arg;
};

static int versions_kv(void *arg, const void *key, size_t klen, const void *val, size_t len)
{
	struct versions_arg *a = arg;
	if (klen != 17)
		return 0;
	struct prov_version pv;
	if (version_decode(a->ino, get_be64((const unsigned char *)key + 9), val, len, &pv, NULL))
		return -EIO;
	return a->cb(a->arg, &pv);
}

int prov_versions(struct store_txn *t, uint64_t ino, prov_version_cb cb, void *arg)
{
	unsigned char k[PROV_KEY_MAX];
	struct versions_arg a = { ino, cb, arg };
	return OPS(t)->prov_scan(t, k, key_n(k, 'v', &ino, 1), versions_kv, &a);
}

/* ---------------------------------------------------------------- edges */

struct source {
	struct prov_use u;
	size_t pos; /* of two uses of one version, the later names it */
};

struct sources {
	struct source *v;
	size_t n, cap;
};

static int sources_add(struct sources *s, uint64_t ino, uint64_t version, uint64_t user)
{
	if (mfs_array_reserve(&s->v, &s->cap, s->n, sizeof *s->v))
		return -ENOMEM;
	s->v[s->n] = (struct source){ { ino, version, user }, s->n };
	s->n++;
	return 0;
}

static int sources_cb(void *arg, uint64_t ino, uint64_t version, uint64_t user)
{
	return sources_add(arg, ino, version, user);
}

static int source_cmp(const void *a, const void *b)
{
	const struct source *x = a, *y = b;
	if (x->u.ino != y->u.ino)
		return x->u.ino < y->u.ino ? -1 : 1;
	if (x->u.version != y->u.version)
		return x->u.version < y->u.version ? -1 : 1;
	return x->pos > y->pos ? -1 : x->pos < y->pos;
}

/* Sorts by file and version, one entry each: of a version listed twice
 * (used by two processes) the later entry stands. */
static void sources_unique(struct sources *s)
{
	if (s->n < 2)
		return;
	qsort(s->v, s->n, sizeof *s->v, source_cmp);
	size_t k = 1;
	for (size_t i = 1; i < s->n; i++)
		if (s->v[i].u.ino != s->v[k - 1].u.ino || s->v[i].u.version != s->v[k - 1].u.version)
			s->v[k++] = s->v[i];
	s->n = k;
}

/* Hands s, made unique, to cb; frees it. */
static int sources_emit(struct sources *s, int rc, prov_edge_cb cb, void *arg)
{
	if (!rc)
		sources_unique(s);
	for (size_t i = 0; i < s->n && !rc; i++)
		rc = cb(arg, s->v[i].u.ino, s->v[i].u.version, s->v[i].u.user);
	free(s->v);
	s->v = NULL;
	s->n = s->cap = 0;
	return rc;
}

struct edge_arg {
	size_t skip; /* key bytes before the edge's far end */
	prov_edge_cb cb;
	void *arg;
};

static int edge_kv(void *arg, const void *key, size_t klen, const void *val, size_t len)
{
	struct edge_arg *a = arg;
	const unsigned char *k = key;
	if (klen == a->skip && k[0] == 'd') {
		/* a version's sources, listed in one record */
		struct dec d = { val, len, false };
		uint32_t n = dec_u32(&d);
		int rc = 0;
		for (uint32_t i = 0; i < n && !rc; i++) {
			uint64_t src = dec_u64(&d), src_version = dec_u64(&d), user = dec_u64(&d);
			rc = d.bad ? -EIO : a->cb(a->arg, src, src_version, user);
		}
		return rc;
	}
	if (klen != a->skip + 16)
		return 0;
	uint64_t proc = len >= 8 ? get_le64(val) : 0;
	return a->cb(a->arg, get_be64(k + a->skip), get_be64(k + a->skip + 8), proc);
}

static int edges(struct store_txn *t, char kind, const uint64_t *v, size_t n, prov_edge_cb cb, void *arg)
{
	unsigned char k[PROV_KEY_MAX];
	size_t klen = key_n(k, kind, v, n);
	struct edge_arg a = { klen, cb, arg };
	return OPS(t)->prov_scan(t, k, klen, edge_kv, &a);
}

struct job_uses_arg {
	uint64_t upto;
	struct sources *out;
};

static int job_uses_kv(void *arg, const void *key, size_t klen, const void *val, size_t len)
{
	struct job_uses_arg *a = arg;
	if (klen != 17)
		return 0;
	if (get_be64((const unsigned char *)key + 9) > a->upto)
		return 1;
	if (len < 24)
		return -EIO;
	const unsigned char *v = val;
	return sources_add(a->out, get_le64(v), get_le64(v + 8), get_le64(v + 16));
}

/* The first upto uses of job, in the order it made them. */
static int job_uses(struct store_txn *t, uint64_t job, uint64_t upto, struct sources *out)
{
	unsigned char k[PROV_KEY_MAX];
	struct job_uses_arg a = { upto, out };
	return OPS(t)->prov_scan(t, k, key_n(k, 'U', &job, 1), job_uses_kv, &a);
}

int prov_sources(struct store_txn *t, uint64_t ino, uint64_t version, prov_edge_cb cb, void *arg)
{
	void *val = NULL;
	size_t len = 0;
	int rc = version_raw(t, ino, version, &val, &len);
	if (rc && rc != -ENOENT)
		return rc;
	struct prov_version pv;
	struct dec rest = { 0 };
	if (!rc && (rc = version_decode(ino, version, val, len, &pv, &rest))) {
		free(val);
		return rc;
	}
	uint64_t v[2] = { ino, version };
	if (rest.n == 0) {
		/* no version record, or one of the older layout */
		free(val);
		return edges(t, 'd', v, 2, cb, arg);
	}
	struct sources s = { 0 };
	uint32_t njobs = dec_u32(&rest);
	for (uint32_t i = 0; i < njobs && !rc; i++) {
		uint64_t job = dec_u64(&rest), uses = dec_u64(&rest);
		rc = rest.bad ? -EIO : job_uses(t, job, uses, &s);
	}
	free(val);
	return sources_emit(&s, rc, cb, arg);
}

/* A job's use of a version: its number among the job's uses (0 in records
 * of the older layout, which have none), and the process that used it. */
struct job_use {
	uint64_t job, seq, user;
};

struct job_use_list {
	struct job_use *v;
	size_t n, cap;
};

static int job_use_kv(void *arg, const void *key, size_t klen, const void *val, size_t len)
{
	struct job_use_list *l = arg;
	const unsigned char *k = key;
	if (klen != 25 && klen != 33)
		return 0;
	if (mfs_array_reserve(&l->v, &l->cap, l->n, sizeof *l->v))
		return -ENOMEM;
	l->v[l->n++] = (struct job_use){ get_be64(k + 17), klen == 33 ? get_be64(k + 25) : 0,
					 len >= 8 ? get_le64(val) : 0 };
	return 0;
}

static int job_use_cmp(const void *a, const void *b)
{
	const struct job_use *x = a, *y = b;
	if (x->job != y->job)
		return x->job < y->job ? -1 : 1;
	return x->seq < y->seq ? -1 : x->seq > y->seq;
}

/* The versions job had a part in that derive from its uses u[0..n) of one
 * version (sorted by seq): those made when the job had made the use. */
struct made_arg {
	const struct job_use *u;
	size_t n;
	struct sources *out;
};

static int made_kv(void *arg, const void *key, size_t klen, const void *val, size_t len)
{
	struct made_arg *a = arg;
	if (klen != 25 || len < 8)
		return 0;
	uint64_t uses = get_le64(val);
	/* the latest of the job's uses of the version that counts names it */
	const struct job_use *by = NULL;
	for (size_t i = 0; i < a->n && a->u[i].seq <= uses; i++)
		by = &a->u[i];
	if (!by)
		return 0;
	const unsigned char *k = key;
	return sources_add(a->out, get_be64(k + 9), get_be64(k + 17), by->user);
}

struct has_arg {
	uint64_t ino, version, user;
	bool found;
};

static int has_cb(void *arg, uint64_t ino, uint64_t version, uint64_t user)
{
	struct has_arg *h = arg;
	if (ino == h->ino && version == h->version) {
		h->found = true;
		h->user = user;
	}
	return 0;
}

struct ids_arg {
	size_t skip, n; /* the key's prefix, the numbers after it */
	struct u64_vec *out;
};

static int ids_kv(void *arg, const void *key, size_t klen, const void *val, size_t len)
{
	struct ids_arg *a = arg;
	if (klen != a->skip + 8 * a->n)
		return 0;
	int rc = 0;
	for (size_t i = 0; i < a->n && !rc; i++)
		rc = u64_vec_push(a->out, get_be64((const unsigned char *)key + a->skip + 8 * i));
	return rc;
}

/* The versions a job of the older layout had a part in that list ino@version
 * among their sources. */
static int old_job_derived(struct store_txn *t, uint64_t job, uint64_t ino, uint64_t version, struct sources *out)
{
	struct u64_vec made = { 0 };
	unsigned char k[PROV_KEY_MAX];
	size_t klen = key_n(k, 'g', &job, 1);
	struct ids_arg a = { klen, 2, &made };
	int rc = OPS(t)->prov_scan(t, k, klen, ids_kv, &a);
	for (size_t i = 0; i + 1 < made.n && !rc; i += 2) {
		struct has_arg h = { ino, version, 0, false };
		rc = prov_sources(t, made.v[i], made.v[i + 1], has_cb, &h);
		if (!rc && h.found)
			rc = sources_add(out, made.v[i], made.v[i + 1], h.user);
	}
	free(made.v);
	return rc;
}

int prov_derived(struct store_txn *t, uint64_t ino, uint64_t version, prov_edge_cb cb, void *arg)
{
	/* the jobs that used this version, and of the versions each had a
	 * part in the ones made after that use; and the edges earlier
	 * versions of metafs wrote one by one */
	uint64_t v[2] = { ino, version };
	struct sources out = { 0 };
	struct job_use_list l = { 0 };
	unsigned char k[PROV_KEY_MAX];
	int rc = edges(t, 'r', v, 2, sources_cb, &out);
	if (!rc)
		rc = OPS(t)->prov_scan(t, k, key_n(k, 'R', v, 2), job_use_kv, &l);
	if (!rc && l.n > 1)
		qsort(l.v, l.n, sizeof *l.v, job_use_cmp);
	for (size_t i = 0; i < l.n && !rc;) {
		size_t j = i;
		while (j < l.n && l.v[j].job == l.v[i].job)
			j++;
		if (l.v[i].seq == 0) {
			rc = old_job_derived(t, l.v[i].job, ino, version, &out);
		} else {
			struct made_arg a = { l.v + i, j - i, &out };
			rc = OPS(t)->prov_scan(t, k, key_n(k, 'g', &l.v[i].job, 1), made_kv, &a);
		}
		i = j;
	}
	free(l.v);
	return sources_emit(&out, rc, cb, arg);
}

int prov_used_by(struct store_txn *t, uint64_t proc, prov_edge_cb cb, void *arg)
{
	/* its own uses, and those of the job it leads */
	struct sources s = { 0 };
	int rc = edges(t, 'u', &proc, 1, sources_cb, &s);
	if (!rc)
		rc = job_uses(t, proc, UINT64_MAX, &s);
	return sources_emit(&s, rc, cb, arg);
}

/* ---------------------------------------------------------------- the graph, for an index */

/* The job standing for a version of the layout that listed its sources. */
static uint64_t listed_job(uint64_t ino, uint64_t version)
{
	uint64_t x = ino * 0x9E3779B97F4A7C15ULL ^ (version + 0x632BE59BD9B4E019ULL);
	x ^= x >> 31;
	x *= 0xBF58476D1CE4E5B9ULL;
	x ^= x >> 29;
	return 1ULL << 63 | x >> 1;
}

int prov_use_edge(struct store_txn *t, uint64_t proc, uint64_t ino, uint64_t version,
		  const struct prov_graph_sink *s)
{
	unsigned char k[PROV_KEY_MAX];
	uint64_t u[3] = { proc, ino, version };
	void *val;
	size_t len;
	int rc = OPS(t)->prov_get(t, k, key_n(k, 'u', u, 3), &val, &len, false);
	if (rc)
		return rc;
	uint64_t job = len >= 32 ? get_le64((unsigned char *)val + 16) : 0;
	uint64_t seq = len >= 32 ? get_le64((unsigned char *)val + 24) : 0;
	free(val);
	return seq ? s->use(s->arg, ino, version, job, seq) : -ENOENT;
}

struct listed_arg {
	const struct prov_graph_sink *s;
	uint64_t job;
	size_t n;
};

static int listed_cb(void *arg, uint64_t src, uint64_t src_version, uint64_t user)
{
	struct listed_arg *a = arg;
	a->n++;
	return a->s->use(a->s->arg, src, src_version, a->job, 1);
}

/* The made edges of a version whose record is val (rest: past its writers). */
static int version_edges(struct store_txn *t, uint64_t ino, uint64_t version, struct dec *rest,
			 const struct prov_graph_sink *s)
{
	int rc = 0;
	if (rest->n) {
		uint32_t njobs = dec_u32(rest);
		for (uint32_t i = 0; i < njobs && !rc; i++) {
			uint64_t job = dec_u64(rest), n = dec_u64(rest);
			rc = rest->bad ? -EIO : s->made(s->arg, job, n, ino, version);
		}
		return rc;
	}
	uint64_t v[2] = { ino, version };
	struct listed_arg a = { s, listed_job(ino, version), 0 };
	rc = edges(t, 'd', v, 2, listed_cb, &a);
	return rc || !a.n ? rc : s->made(s->arg, a.job, 1, ino, version);
}

int prov_version_edges(struct store_txn *t, uint64_t ino, uint64_t version, const struct prov_graph_sink *s)
{
	void *val;
	size_t len;
	int rc = version_raw(t, ino, version, &val, &len);
	if (rc)
		return rc;
	struct prov_version pv;
	struct dec rest;
	rc = version_decode(ino, version, val, len, &pv, &rest);
	if (!rc)
		rc = version_edges(t, ino, version, &rest, s);
	free(val);
	return rc;
}

struct graph_scan {
	struct store_txn *t;
	const struct prov_graph_sink *s;
};

static int graph_use_kv(void *arg, const void *key, size_t klen, const void *val, size_t len)
{
	struct graph_scan *g = arg;
	const unsigned char *k = key;
	if (klen != 33)
		return 0; /* a use of the listed layout: its versions list it */
	return g->s->use(g->s->arg, get_be64(k + 1), get_be64(k + 9), get_be64(k + 17), get_be64(k + 25));
}

static int graph_version_kv(void *arg, const void *key, size_t klen, const void *val, size_t len)
{
	struct graph_scan *g = arg;
	if (klen != 17)
		return 0;
	const unsigned char *k = key;
	uint64_t ino = get_be64(k + 1), version = get_be64(k + 9);
	struct prov_version pv;
	struct dec rest;
	int rc = version_decode(ino, version, val, len, &pv, &rest);
	return rc ? rc : version_edges(g->t, ino, version, &rest, g->s);
}

int prov_graph_scan(struct store_txn *t, const struct prov_graph_sink *s)
{
	struct graph_scan g = { t, s };
	int rc = OPS(t)->prov_scan(t, "R", 1, graph_use_kv, &g);
	return rc ? rc : OPS(t)->prov_scan(t, "v", 1, graph_version_kv, &g);
}

/* A set of (ino, version) pairs, open addressing; 0 0 is never a member. */
struct pair_set {
	uint64_t *v; /* pairs */
	size_t n, cap;
};

static size_t pair_slot(const struct pair_set *p, uint64_t ino, uint64_t version)
{
	size_t mask = p->cap - 1;
	size_t i = (size_t)((ino * 0x9E3779B97F4A7C15ULL ^ version) * 0xBF58476D1CE4E5B9ULL >> 20) & mask;
	while ((p->v[2 * i] || p->v[2 * i + 1]) && (p->v[2 * i] != ino || p->v[2 * i + 1] != version))
		i = (i + 1) & mask;
	return i;
}

static bool pair_has(const struct pair_set *p, uint64_t ino, uint64_t version)
{
	if (!p->cap)
		return false;
	size_t i = pair_slot(p, ino, version);
	return p->v[2 * i] || p->v[2 * i + 1];
}

/* 1: added, 0: there already, <0: no memory */
static int pair_add(struct pair_set *p, uint64_t ino, uint64_t version)
{
	if (2 * (p->n + 1) > p->cap) {
		struct pair_set np = { calloc(p->cap ? 4 * p->cap : 128, sizeof *np.v), 0, p->cap ? 2 * p->cap : 64 };
		if (!np.v)
			return -ENOMEM;
		for (size_t i = 0; i < p->cap; i++)
			if (p->v[2 * i] || p->v[2 * i + 1])
				pair_add(&np, p->v[2 * i], p->v[2 * i + 1]);
		free(p->v);
		*p = np;
	}
	size_t i = pair_slot(p, ino, version);
	if (p->v[2 * i] || p->v[2 * i + 1])
		return 0;
	p->v[2 * i] = ino;
	p->v[2 * i + 1] = version;
	p->n++;
	return 1;
}

struct walk {
	struct pair_set seen;
	struct u64_vec queue; /* pairs still to visit */
};

static int walk_cb(void *arg, uint64_t ino, uint64_t version, uint64_t proc)
{
	struct walk *w = arg;
	int rc = pair_add(&w->seen, ino, version);
	if (rc <= 0)
		return rc;
	rc = u64_vec_push(&w->queue, ino);
	return rc ? rc : u64_vec_push(&w->queue, version);
}

static int walk_version_cb(void *arg, const struct prov_version *pv)
{
	return walk_cb(arg, pv->ino, pv->version, 0);
}

static int u64_cmp(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
	return x < y ? -1 : x > y;
}

int prov_descendants(struct store_txn *t, uint64_t ino, struct u64_vec *out)
{
	struct walk w = { { NULL, 0, 0 }, { NULL, 0, 0 } };
	/* every version of ino, then down from each version reached */
	int rc = prov_versions(t, ino, walk_version_cb, &w);
	for (size_t i = 0; !rc && i + 1 < w.queue.n; i += 2)
		rc = prov_derived(t, w.queue.v[i], w.queue.v[i + 1], walk_cb, &w);
	/* the files whose newest version was reached */
	struct u64_vec files = { NULL, 0, 0 };
	for (size_t i = 0; !rc && i + 1 < w.queue.n; i += 2)
		if (w.queue.v[i] != ino)
			rc = u64_vec_push(&files, w.queue.v[i]);
	if (!rc && files.n)
		qsort(files.v, files.n, sizeof *files.v, u64_cmp);
	for (size_t i = 0; !rc && i < files.n; i++) {
		if (i && files.v[i] == files.v[i - 1])
			continue;
		uint64_t cur;
		int cr = prov_current(t, files.v[i], &cur);
		if (cr && cr != -ENOENT)
			rc = cr;
		else if (!cr && pair_has(&w.seen, files.v[i], cur))
			rc = u64_vec_push(out, files.v[i]);
	}
	free(files.v);
	free(w.seen.v);
	free(w.queue.v);
	return rc;
}

/* ---------------------------------------------------------------- in a transaction */

/* The first name of a version's file, copied into it: the store's bytes
 * are valid only during the callback. */
static int first_name_cb(void *arg, uint64_t parent, const char *name, size_t len)
{
	struct prov_version *pv = arg;
	if (len > MFS_NAME_MAX)
		len = MFS_NAME_MAX;
	pv->parent = parent;
	memcpy(pv->name, name, len);
	pv->name[len] = '\0';
	return 1;
}

/* SHA-256 of ext (n of them) when they hold the whole of a file of size
 * bytes, in order from offset 0; false when they do not. */
static bool digest_extents(const struct ns_extent *ext, size_t n, uint64_t size, unsigned char *out)
{
	uint64_t at = 0;
	for (size_t i = 0; i < n; i++) {
		if (ext[i].off != at)
			return false;
		at += ext[i].len;
	}
	const EVP_MD *sha = bs_sha256();
	EVP_MD_CTX *ctx;
	if (at != size || !sha || !(ctx = EVP_MD_CTX_new()))
		return false;
	bool ok = EVP_DigestInit_ex(ctx, sha, NULL) == 1;
	for (size_t i = 0; i < n && ok; i++)
		ok = EVP_DigestUpdate(ctx, ext[i].data, ext[i].len) == 1;
	unsigned int mdlen = 0;
	ok = ok && EVP_DigestFinal_ex(ctx, out, &mdlen) == 1 && mdlen == PROV_DIGEST_LEN;
	EVP_MD_CTX_free(ctx);
	return ok;
}

/* A new version record for in's content as it stands in t; the caller
 * holds in's lock, so two versions of one file cannot take one number.
 * name (parent its directory): the file's name now, looked up when NULL.
 * cur: the file's newest version number, looked up when NULL. ext: the
 * bytes just written, read back when they are not the whole file. */
static int new_version(struct store_txn *t, const struct inode_rec *in, uint64_t parent, const char *name,
		       const uint64_t *cur, const struct ns_extent *ext, size_t n, struct prov_version *pv)
{
	uint64_t newest = 0;
	int rc;
	if (cur)
		newest = *cur;
	else if ((rc = prov_current(t, in->ino, &newest)) && rc != -ENOENT)
		return rc;
	memset(pv, 0, sizeof *pv);
	pv->ino = in->ino;
	pv->version = newest + 1;
	pv->inode_version = in->version;
	pv->size = in->size;
	pv->mtime = in->mtime;
	pv->time_ns = mfs_now_ns();
	/* the name it has now */
	if (name) {
		size_t nl = strnlen(name, MFS_NAME_MAX);
		pv->parent = parent;
		memcpy(pv->name, name, nl);
		pv->name[nl] = '\0';
	} else if ((rc = OPS(t)->names_of(t, in->ino, first_name_cb, pv)) < 0) {
		return rc;
	}
	if (in->flags & INODE_F_CHUNKED)
		return 0;
	if (digest_extents(ext, n, in->size, pv->digest)) {
		pv->has_digest = true;
		return 0;
	}
	void *rec = NULL;
	size_t rlen = 0;
	rc = OPS(t)->inline_get(t, in->ino, &rec, &rlen);
	if (rc == -ENOENT) {
		rlen = 0;
		rc = 0;
	}
	if (rc)
		return rc;
	/* the record is framed with its checksums; a payload shorter than
	 * the file reads as zeros after it. A damaged one gets no digest:
	 * reading the file says so. */
	const void *payload = "";
	size_t plen = 0;
	if (rec && bs_unframe(rec, rlen, &payload, &plen)) {
		free(rec);
		return 0;
	}
	char *all = malloc(in->size ? (size_t)in->size : 1);
	if (!all) {
		free(rec);
		return -ENOMEM;
	}
	if (plen > in->size)
		plen = (size_t)in->size;
	memcpy(all, payload, plen);
	memset(all + plen, 0, (size_t)in->size - plen);
	struct ns_extent whole = { 0, (size_t)in->size, all };
	pv->has_digest = digest_extents(&whole, 1, in->size, pv->digest);
	free(all);
	free(rec);
	return 0;
}

/* The changelog record of a use or a generation of file in's version. */
static int append_file_rec(struct store_txn *t, uint32_t op, int64_t time_ns, const struct inode_rec *in,
			   const struct prov_proc *p, uint64_t version)
{
	struct cl_rec cl = cl_make(op, NULL, in);
	cl.time_ns = time_ns;
	cl.uid = p->uid;
	cl.gid = p->gid;
	cl.pid = p->pid;
	cl.proc = p->id;
	cl.fversion = version;
	return OPS(t)->changelog_append(t, &cl);
}

/* A use's records (in is the file, as it is now): the processes' own
 * when asked, and unless proc used that version before, the use, the job's
 * seq-th use and the other way, for the walk down, and its changelog
 * record. */
static int use_records(struct store_txn *t, const struct prov_use_rec *u, const struct inode_rec *in)
{
	int rc;
	if (u->record_proc && (rc = proc_put(t, u->proc)))
		return rc;
	if (u->job != u->proc && u->record_job && (rc = proc_put(t, u->job)))
		return rc;
	unsigned char k[PROV_KEY_MAX], v[32];
	uint64_t key[3] = { u->proc->id, u->ino, u->version };
	/* once per process and version, however often it opens the file */
	void *had;
	size_t hlen;
	rc = u->fresh ? -ENOENT : OPS(t)->prov_get(t, k, key_n(k, 'u', key, 3), &had, &hlen, false);
	if (rc == 0) {
		free(had);
		return 0;
	}
	if (rc != -ENOENT)
		return rc;
	put_le64(v, u->proc->id);
	put_le64(v + 8, (uint64_t)u->time_ns);
	put_le64(v + 16, u->job->id);
	put_le64(v + 24, u->seq);
	if ((rc = OPS(t)->prov_put(t, k, key_n(k, 'u', key, 3), v, sizeof v)))
		return rc;
	if (u->seq) {
		uint64_t uk[2] = { u->job->id, u->seq };
		unsigned char uv[32];
		put_le64(uv, u->ino);
		put_le64(uv + 8, u->version);
		put_le64(uv + 16, u->proc->id);
		put_le64(uv + 24, (uint64_t)u->time_ns);
		if ((rc = OPS(t)->prov_put(t, k, key_n(k, 'U', uk, 2), uv, sizeof uv)))
			return rc;
		uint64_t r[4] = { u->ino, u->version, u->job->id, u->seq };
		if ((rc = OPS(t)->prov_put(t, k, key_n(k, 'R', r, 4), v, 16)))
			return rc;
	}
	return append_file_rec(t, CL_USED, u->time_ns, in, u->proc, u->version);
}

/* Uses recorded together, each with the file as it is now (a file gone
 * meanwhile is named by its number alone). */
static int batch_uses(struct store_txn *t, const struct prov_use_rec *u, size_t n)
{
	int rc = 0;
	for (size_t i = 0; i < n && !rc; i++) {
		struct inode_rec in;
		rc = OPS(t)->inode_get(t, u[i].ino, &in, false);
		if (rc == -ENOENT) {
			memset(&in, 0, sizeof in);
			in.ino = u[i].ino;
			in.mode = S_IFREG;
			rc = 0;
		}
		if (!rc)
			rc = use_records(t, &u[i], &in);
	}
	return rc;
}

#define GEN_JOBS 32 /* writers and feeders: at most 8 + 16 */

int prov_txn_generate(struct store_txn *t, const struct inode_rec *in, const struct prov_gen *g,
		      const struct ns_extent *ext, size_t n, struct cl_rec *wrec, uint64_t *version)
{
	/* uses recorded for later, which the version may derive from */
	int rc = batch_uses(t, g->uses, g->nuses);
	if (rc)
		return rc;
	struct prov_version pv;
	rc = new_version(t, in, g->parent, g->name, g->current_known ? &g->current : NULL, ext, n, &pv);
	if (rc)
		return rc;
	for (size_t i = 0; i < g->n && pv.ngen < MFS_ARRAY_LEN(pv.gen); i++)
		pv.gen[pv.ngen++] = g->procs[i]->id;
	/* each job once, with the most uses it was listed with */
	struct prov_job_uses jobs[GEN_JOBS] = { { 0, 0 } };
	size_t njobs = 0;
	for (size_t i = 0; i < g->njobs; i++) {
		if (!g->jobs[i].uses)
			continue;
		size_t k = 0;
		while (k < njobs && jobs[k].job != g->jobs[i].job)
			k++;
		if (k < njobs) {
			if (g->jobs[i].uses > jobs[k].uses)
				jobs[k].uses = g->jobs[i].uses;
		} else if (njobs < GEN_JOBS) {
			jobs[njobs++] = g->jobs[i];
		}
	}
	if ((rc = version_put(t, &pv, jobs, njobs)))
		return rc;
	/* for the walk down: each job had a part in it, with so many uses */
	unsigned char k[PROV_KEY_MAX], val[8];
	for (size_t i = 0; i < njobs && !rc; i++) {
		uint64_t gk[3] = { jobs[i].job, in->ino, pv.version };
		put_le64(val, jobs[i].uses);
		rc = OPS(t)->prov_put(t, k, key_n(k, 'g', gk, 3), val, sizeof val);
	}
	for (size_t i = 0; i < g->n && !rc; i++) {
		const struct prov_proc *p = g->procs[i];
		if (g->record && g->record[i] && (rc = proc_put(t, p)))
			break;
		if (i == 0 && wrec) {
			/* the write record that closes the version tells it */
			wrec->proc = p->id;
			wrec->fversion = pv.version;
		} else {
			rc = append_file_rec(t, CL_GENERATED, pv.time_ns, in, p, pv.version);
		}
	}
	if (!rc && version)
		*version = pv.version;
	return rc;
}

struct uses_args {
	const struct prov_use_rec *u;
	size_t n;
};

static int do_uses(struct store_txn *t, void *arg)
{
	struct uses_args *a = arg;
	return batch_uses(t, a->u, a->n);
}

int ns_prov_uses(struct mfs_volume *v, const struct prov_use_rec *u, size_t n)
{
	struct uses_args a = { u, n };
	return n ? ns_txn_run(v, do_uses, &a) : 0;
}

struct used_args {
	const struct prov_proc *p, *job;
	const bool *record;
	uint64_t ino, seq;
	uint64_t known; /* the version the caller knows the content is, 0: none */
	uint64_t version;
};

static int do_used(struct store_txn *t, void *arg)
{
	struct used_args *a = arg;
	struct inode_rec in;
	/* locked when a version may have to be made (see new_version) */
	int rc = OPS(t)->inode_get(t, a->ino, &in, a->known == 0);
	if (rc)
		return rc;
	if (!S_ISREG(in.mode))
		return -EINVAL;
	uint64_t version = a->known;
	if (!version) {
		/* the newest version, unless the content changed since without
		 * one (written while capture was off): that change is a
		 * version too */
		struct prov_version pv;
		uint64_t cur = 0;
		rc = prov_current(t, a->ino, &cur);
		if (rc == 0)
			rc = prov_version_get(t, a->ino, cur, &pv);
		if (rc && rc != -ENOENT)
			return rc;
		if (rc == -ENOENT || pv.size != in.size || pv.mtime.tv_sec != in.mtime.tv_sec ||
		    pv.mtime.tv_nsec != in.mtime.tv_nsec) {
			if ((rc = new_version(t, &in, 0, NULL, &cur, NULL, 0, &pv)) ||
			    (rc = version_put(t, &pv, NULL, 0)))
				return rc;
			/* a version no process is known to have written */
			struct cl_rec cl = cl_make(CL_GENERATED, NULL, &in);
			cl.time_ns = pv.time_ns;
			cl.fversion = pv.version;
			if ((rc = OPS(t)->changelog_append(t, &cl)))
				return rc;
		}
		version = pv.version;
	}
	a->version = version;
	struct prov_use_rec u = { a->p, a->job, a->ino, version, a->seq, mfs_now_ns(), a->record[0], a->record[1],
				  false };
	return use_records(t, &u, &in);
}

int ns_prov_used(struct mfs_volume *v, const struct prov_proc *p, const struct prov_proc *job,
		 const bool record[2], uint64_t ino, uint64_t seq, uint64_t *version)
{
	struct used_args a = { p, job ? job : p, record, ino, seq, version ? *version : 0, 0 };
	int rc = ns_txn_run(v, do_used, &a);
	if (!rc && version)
		*version = a.version;
	return rc;
}
