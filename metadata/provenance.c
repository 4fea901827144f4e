/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Provenance records over the store's prov_* operations.
 *
 * Keys (integers big-endian, so a prefix lists in order):
 *   p|proc                          the process
 *   c|ino                           the file's newest version number
 *   v|ino|version                   the version: size, mtime, digest, name, writers
 *   u|proc|ino|version              proc used ino@version         -> user, time
 *                                   (also kept under the proc's job, user naming
 *                                   the process of the job that used it)
 *   d|ino|version|src|src_version   ino@version derived from src  -> user
 *   r|src|src_version|ino|version   the same edge, the other way  -> proc
 * A walk up or down the graph is a prefix scan per step, whatever the size
 * of the volume.
 */
#include "metadata.h"
#include "provenance.h"
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

static int version_put(struct store_txn *t, const struct prov_version *pv)
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
	if (e.failed) {
		free(e.p);
		return -ENOMEM;
	}
	unsigned char k[PROV_KEY_MAX];
	uint64_t kv[2] = { pv->ino, pv->version };
	int rc = OPS(t)->prov_put(t, k, key_n(k, 'v', kv, 2), e.p, e.n);
	free(e.p);
	if (rc)
		return rc;
	unsigned char cur[8];
	put_le64(cur, pv->version);
	return OPS(t)->prov_put(t, k, key_n(k, 'c', &pv->ino, 1), cur, sizeof cur);
}

static int version_decode(uint64_t ino, uint64_t version, const void *val, size_t len,
			  struct prov_version *pv)
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
	return d.bad ? -EIO : 0;
}

int prov_current(struct store_txn *t, uint64_t ino, uint64_t *version)
{
	unsigned char k[PROV_KEY_MAX];
	void *val;
	size_t len;
	int rc = OPS(t)->prov_get(t, k, key_n(k, 'c', &ino, 1), &val, &len, false);
	if (rc)
		return rc;
	if (len != 8)
		rc = -EIO;
	else
		*version = get_le64(val);
	free(val);
	return rc;
}

int prov_version_get(struct store_txn *t, uint64_t ino, uint64_t version, struct prov_version *out)
{
	unsigned char k[PROV_KEY_MAX];
	uint64_t kv[2] = { ino, version };
	void *val;
	size_t len;
	int rc = OPS(t)->prov_get(t, k, key_n(k, 'v', kv, 2), &val, &len, false);
	if (rc)
		return rc;
	rc = version_decode(ino, version, val, len, out);
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
	if (version_decode(a->ino, get_be64((const unsigned char *)key + 9), val, len, &pv))
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

struct edge_arg {
	size_t skip; /* key bytes before the edge's far end */
	prov_edge_cb cb;
	void *arg;
};

static int edge_kv(void *arg, const void *key, size_t klen, const void *val, size_t len)
{
	struct edge_arg *a = arg;
	const unsigned char *k = key;
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

int prov_sources(struct store_txn *t, uint64_t ino, uint64_t version, prov_edge_cb cb, void *arg)
{
	uint64_t v[2] = { ino, version };
	return edges(t, 'd', v, 2, cb, arg);
}

int prov_derived(struct store_txn *t, uint64_t ino, uint64_t version, prov_edge_cb cb, void *arg)
{
	uint64_t v[2] = { ino, version };
	return edges(t, 'r', v, 2, cb, arg);
}

int prov_used_by(struct store_txn *t, uint64_t proc, prov_edge_cb cb, void *arg)
{
	return edges(t, 'u', &proc, 1, cb, arg);
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

/* A new version record for in's content as it stands in t. */
static int new_version(struct store_txn *t, const struct inode_rec *in, struct prov_version *pv)
{
	uint64_t cur = 0;
	unsigned char k[PROV_KEY_MAX];
	void *val;
	size_t len;
	/* locked, so that two closes of one file take distinct numbers */
	int rc = OPS(t)->prov_get(t, k, key_n(k, 'c', &in->ino, 1), &val, &len, true);
	if (rc == 0) {
		if (len == 8)
			cur = get_le64(val);
		free(val);
	} else if (rc != -ENOENT) {
		return rc;
	}
	memset(pv, 0, sizeof *pv);
	pv->ino = in->ino;
	pv->version = cur + 1;
	pv->inode_version = in->version;
	pv->size = in->size;
	pv->mtime = in->mtime;
	pv->time_ns = mfs_now_ns();
	/* the name it has now */
	rc = OPS(t)->names_of(t, in->ino, first_name_cb, pv);
	if (rc < 0)
		return rc;
	if (!(in->flags & INODE_F_CHUNKED)) {
		void *data = NULL;
		size_t dlen = 0;
		rc = OPS(t)->inline_get(t, in->ino, &data, &dlen);
		if (rc == -ENOENT) {
			dlen = 0;
			rc = 0;
		}
		if (rc)
			return rc;
		unsigned int mdlen = 0;
		if (EVP_Digest(data ? data : "", dlen < in->size ? dlen : in->size, pv->digest, &mdlen,
			       EVP_sha256(), NULL) == 1 &&
		    mdlen == PROV_DIGEST_LEN)
			pv->has_digest = true;
		free(data);
	}
	return 0;
}

/* The changelog record of a use or a generation of file in's version. */
static int append_file_rec(struct store_txn *t, uint32_t op, int64_t time_ns, const struct inode_rec *in,
			   const struct prov_proc *p, uint64_t version)
{
	struct cl_rec cl = {
		.time_ns = time_ns,
		.op = op,
		.ino = in->ino,
		.version = in->version,
		.mode = in->mode,
		.nlink = in->nlink,
		.size = in->size,
		.uid = p->uid,
		.gid = p->gid,
		.pid = p->pid,
		.proc = p->id,
		.fversion = version,
	};
	return OPS(t)->changelog_append(t, &cl);
}

struct derive_arg {
	struct store_txn *t;
	uint64_t ino, version, proc;
};

static int derive_cb(void *arg, uint64_t src, uint64_t src_version, uint64_t user)
{
	struct derive_arg *a = arg;
	unsigned char k[PROV_KEY_MAX], v[8];
	put_le64(v, user);
	uint64_t d[4] = { a->ino, a->version, src, src_version };
	int rc = OPS(a->t)->prov_put(a->t, k, key_n(k, 'd', d, 4), v, 8);
	if (rc)
		return rc;
	uint64_t r[4] = { src, src_version, a->ino, a->version };
	return OPS(a->t)->prov_put(a->t, k, key_n(k, 'r', r, 4), v, 8);
}

int prov_txn_generate(struct store_txn *t, const struct inode_rec *in, const struct prov_gen *g,
		      uint64_t *version)
{
	struct prov_version pv;
	int rc = new_version(t, in, &pv);
	if (rc)
		return rc;
	for (size_t i = 0; i < g->n && pv.ngen < MFS_ARRAY_LEN(pv.gen); i++)
		pv.gen[pv.ngen++] = g->procs[i]->id;
	if ((rc = version_put(t, &pv)))
		return rc;
	for (size_t i = 0; i < g->n; i++) {
		const struct prov_proc *p = g->procs[i];
		if (g->record && g->record[i] && (rc = proc_put(t, p)))
			return rc;
		/* the edges are written in this transaction, from the used
		 * records committed before it: what the process's job had
		 * used before this version was closed */
		struct derive_arg a = { t, in->ino, pv.version, p->id };
		if ((rc = prov_used_by(t, p->job ? p->job : p->id, derive_cb, &a)))
			return rc;
		if ((rc = append_file_rec(t, CL_GENERATED, pv.time_ns, in, p, pv.version)))
			return rc;
	}
	for (size_t i = 0; i < g->nfeeders; i++) {
		const struct prov_proc *p = g->feeders[i];
		struct derive_arg a = { t, in->ino, pv.version, p->id };
		if ((rc = prov_used_by(t, p->job ? p->job : p->id, derive_cb, &a)))
			return rc;
	}
	if (version)
		*version = pv.version;
	return 0;
}

struct used_args {
	const struct prov_proc *p, *job;
	const bool *record;
	uint64_t ino, version;
};

static int do_used(struct store_txn *t, void *arg)
{
	struct used_args *a = arg;
	struct inode_rec in;
	int rc = OPS(t)->inode_get(t, a->ino, &in, false);
	if (rc)
		return rc;
	if (!S_ISREG(in.mode))
		return -EINVAL;
	/* the newest version, unless the content changed since without one
	 * (written while capture was off): that change is a version too */
	struct prov_version pv;
	uint64_t cur;
	rc = prov_current(t, a->ino, &cur);
	if (rc == 0)
		rc = prov_version_get(t, a->ino, cur, &pv);
	if (rc && rc != -ENOENT)
		return rc;
	if (rc == -ENOENT || pv.size != in.size || pv.mtime.tv_sec != in.mtime.tv_sec ||
	    pv.mtime.tv_nsec != in.mtime.tv_nsec) {
		if ((rc = new_version(t, &in, &pv)) || (rc = version_put(t, &pv)))
			return rc;
	}
	a->version = pv.version;
	if (a->record[0] && (rc = proc_put(t, a->p)))
		return rc;
	if (a->job != a->p && a->record[1] && (rc = proc_put(t, a->job)))
		return rc;
	unsigned char k[PROV_KEY_MAX], v[16];
	int64_t now = mfs_now_ns();
	put_le64(v, a->p->id);
	put_le64(v + 8, (uint64_t)now);
	uint64_t u[3] = { a->p->id, a->ino, pv.version };
	/* once per process and version, however often it opens the file */
	void *had;
	size_t hlen;
	rc = OPS(t)->prov_get(t, k, key_n(k, 'u', u, 3), &had, &hlen, false);
	if (rc == 0) {
		free(had);
		return 0;
	}
	if (rc != -ENOENT)
		return rc;
	if ((rc = OPS(t)->prov_put(t, k, key_n(k, 'u', u, 3), v, sizeof v)))
		return rc;
	if (a->job != a->p) {
		u[0] = a->job->id;
		if ((rc = OPS(t)->prov_put(t, k, key_n(k, 'u', u, 3), v, sizeof v)))
			return rc;
	}
	return append_file_rec(t, CL_USED, now, &in, a->p, pv.version);
}

int ns_prov_used(struct mfs_volume *v, const struct prov_proc *p, const struct prov_proc *job,
		 const bool record[2], uint64_t ino, uint64_t *version)
{
	struct used_args a = { p, job ? job : p, record, ino, 0 };
	int rc = ns_txn_run(v, do_used, &a);
	if (!rc && version)
		*version = a.version;
	return rc;
}
