/* SPDX-License-Identifier: Apache-2.0 */
/* Provenance tests, no FUSE: uses, generated versions and their sources,
 * the walk down, feeders, names, digests, and records in the older layout,
 * read back through the public readers. */
#include "harness.h"
#include "common.h"

#include <openssl/evp.h>
#include <sys/stat.h>

#include "ns_helpers.h"

/* writes len bytes at off, no version */
static int put(struct mfs_volume *v, uint64_t ino, uint64_t off, const void *data, size_t len)
{
	struct ns_extent e = { off, len, data };
	return ns_write(v, &C, ino, &e, 1, NULL, NULL);
}

/* writes len bytes at off and closes a version generated as g says */
static int put_gen(struct mfs_volume *v, uint64_t ino, uint64_t off, const void *data, size_t len,
		   const struct prov_gen *g, uint64_t *version)
{
	struct ns_extent e = { off, len, data };
	return ns_write_version(v, &C, ino, &e, 1, NULL, g, version);
}

/* A process record as the capture would fill it; job 0: its own job. */
static struct prov_proc mkproc(struct mfs_volume *v, uint32_t pid, const char *exe, const char *argv,
			       size_t argv_len, uint64_t job)
{
	struct prov_proc p = { 0 };
	if (v->store->ops->ino_alloc(v->store, &p.id)) {
		fprintf(stderr, "ino_alloc failed\n");
		exit(1);
	}
	p.pid = pid;
	p.ppid = 1;
	p.uid = 1000;
	p.gid = 1000;
	p.start_ns = 1700000000000000000LL + pid;
	p.job = job ? job : p.id;
	p.exe = (char *)exe;
	p.cwd = (char *)"/work";
	p.argv = (char *)argv;
	p.argv_len = argv_len;
	return p;
}

static void sha256(const void *data, size_t len, unsigned char *out)
{
	unsigned int n = 0;
	if (EVP_Digest(data, len, out, &n, EVP_sha256(), NULL) != 1 || n != PROV_DIGEST_LEN) {
		fprintf(stderr, "EVP_Digest failed\n");
		exit(1);
	}
}

/* ---------------------------------------------------------------- readers */

struct edges {
	uint64_t ino[64], ver[64], proc[64];
	int n;
};

static int edge_cb(void *arg, uint64_t ino, uint64_t version, uint64_t proc)
{
	struct edges *e = arg;
	if (e->n < 64) {
		e->ino[e->n] = ino;
		e->ver[e->n] = version;
		e->proc[e->n] = proc;
	}
	e->n++;
	return 0;
}

enum which { SOURCES, DERIVED, USED_BY };

/* Lists one kind of edge in a read transaction of its own, as the tools do. */
static int read_edges(struct mfs_volume *v, enum which w, uint64_t ino, uint64_t version, struct edges *e)
{
	memset(e, 0, sizeof *e);
	struct store_txn *t;
	int rc = v->store->ops->begin_read(v->store, &t);
	if (rc)
		return rc;
	if (w == SOURCES)
		rc = prov_sources(t, ino, version, edge_cb, e);
	else if (w == DERIVED)
		rc = prov_derived(t, ino, version, edge_cb, e);
	else
		rc = prov_used_by(t, ino, edge_cb, e);
	v->store->ops->abort(t);
	return rc;
}

static int edge_is(const struct edges *e, int i, uint64_t ino, uint64_t version, uint64_t proc)
{
	return i < e->n && i < 64 && e->ino[i] == ino && e->ver[i] == version && e->proc[i] == proc;
}

static int read_version(struct mfs_volume *v, uint64_t ino, uint64_t version, struct prov_version *pv)
{
	memset(pv, 0, sizeof *pv);
	struct store_txn *t;
	int rc = v->store->ops->begin_read(v->store, &t);
	if (rc)
		return rc;
	rc = prov_version_get(t, ino, version, pv);
	v->store->ops->abort(t);
	return rc;
}

static int read_current(struct mfs_volume *v, uint64_t ino, uint64_t *version)
{
	*version = 0;
	struct store_txn *t;
	int rc = v->store->ops->begin_read(v->store, &t);
	if (rc)
		return rc;
	rc = prov_current(t, ino, version);
	v->store->ops->abort(t);
	return rc;
}

static int read_proc(struct mfs_volume *v, uint64_t id, struct prov_proc *out)
{
	struct store_txn *t;
	int rc = v->store->ops->begin_read(v->store, &t);
	if (rc)
		return rc;
	rc = prov_proc_get(t, id, out);
	v->store->ops->abort(t);
	return rc;
}

struct vlist {
	uint64_t ver[16];
	int n;
};

static int vlist_cb(void *arg, const struct prov_version *pv)
{
	struct vlist *l = arg;
	if (l->n < 16)
		l->ver[l->n] = pv->version;
	l->n++;
	return 0;
}

static int read_versions(struct mfs_volume *v, uint64_t ino, struct vlist *l)
{
	memset(l, 0, sizeof *l);
	struct store_txn *t;
	int rc = v->store->ops->begin_read(v->store, &t);
	if (rc)
		return rc;
	rc = prov_versions(t, ino, vlist_cb, l);
	v->store->ops->abort(t);
	return rc;
}

/* The uses each job recorded, numbered as the capture numbers them. */
static struct {
	uint64_t job, seq;
} seqs[64];
static int nseqs;

static uint64_t *seq_of(uint64_t job)
{
	for (int i = 0; i < nseqs; i++)
		if (seqs[i].job == job)
			return &seqs[i].seq;
	if (nseqs == 64) {
		fprintf(stderr, "too many jobs\n");
		exit(1);
	}
	seqs[nseqs].job = job;
	seqs[nseqs].seq = 0;
	return &seqs[nseqs++].seq;
}

/* p, of job `job`, uses ino's current version (looked up in the store) */
static int use(struct mfs_volume *v, const struct prov_proc *p, const struct prov_proc *job, const bool rec[2],
	       uint64_t ino, uint64_t *ver)
{
	*ver = 0;
	return ns_prov_used(v, p, job, rec, ino, ++*seq_of(job->id), ver);
}

/* job's part in a version closed now: its uses so far */
static struct prov_job_uses uses_of(const struct prov_proc *job)
{
	return (struct prov_job_uses){ job->id, *seq_of(job->id) };
}

/* ---------------------------------------------------------------- cases */

static const bool REC_BOTH[2] = { true, true };
static const bool REC_SELF[2] = { true, false };

/* the state the cases build on, one after the other */
struct world {
	struct prov_proc P, Q;
	uint64_t fa, fb, fc;
	char a_data[16];
	size_t a_len;
};

/* 1. a process uses a file that had no version yet */
static void test_used(struct mfs_volume *v, struct world *w)
{
	w->fa = mkfile(v, ROOT, "a");
	memcpy(w->a_data, "alpha-content", 13);
	w->a_len = 13;
	CHECK_RC(put(v, w->fa, 0, w->a_data, w->a_len), 0, "write a without a version");
	uint64_t cur;
	CHECK_RC(read_current(v, w->fa, &cur), -ENOENT, "a plain write makes no version");

	w->P = mkproc(v, 101, "/usr/bin/cat", "cat\0a\0", 6, 0);
	uint64_t ver = 0;
	CHECK_RC(use(v, &w->P, &w->P, REC_SELF, w->fa, &ver), 0, "P uses a");
	CHECK(ver == 1, "the first use of a file with no version observes version 1 (%llu)",
	      (unsigned long long)ver);
	CHECK_RC(read_current(v, w->fa, &cur), 0, "a has a current version");
	CHECK(cur == 1, "current version of a is 1 (%llu)", (unsigned long long)cur);

	struct prov_version pv;
	CHECK_RC(read_version(v, w->fa, 1, &pv), 0, "read a@1");
	unsigned char want[PROV_DIGEST_LEN];
	sha256(w->a_data, w->a_len, want);
	CHECK(pv.ino == w->fa && pv.version == 1 && pv.size == w->a_len && pv.ngen == 0,
	      "an observed version: its size, and no writers (ngen %zu, size %llu)", pv.ngen,
	      (unsigned long long)pv.size);
	CHECK(pv.has_digest && !memcmp(pv.digest, want, PROV_DIGEST_LEN), "an observed version has its content's digest");
	CHECK(pv.parent == ROOT && !strcmp(pv.name, "a"), "an observed version has the file's name ('%s')", pv.name);

	uint64_t ver2 = 0;
	CHECK_RC(use(v, &w->P, &w->P, REC_SELF, w->fa, &ver2), 0, "P uses a again");
	CHECK(ver2 == 1, "a second use names the same version (%llu)", (unsigned long long)ver2);
	CHECK_RC(read_current(v, w->fa, &cur), 0, "current version after the second use");
	CHECK(cur == 1, "the second use made no version (%llu)", (unsigned long long)cur);

	struct edges e;
	CHECK_RC(read_edges(v, USED_BY, w->P.id, 0, &e), 0, "prov_used_by P");
	CHECK(e.n == 1 && edge_is(&e, 0, w->fa, 1, w->P.id), "P used exactly a@1, once (%d edges)", e.n);
	CHECK_RC(read_edges(v, SOURCES, w->fa, 1, &e), 0, "prov_sources of an observed version");
	CHECK(e.n == 0, "an observed version has no sources (%d)", e.n);

	struct prov_proc got;
	CHECK_RC(read_proc(v, w->P.id, &got), 0, "P's record was written with its first use");
	CHECK(got.pid == 101 && got.job == w->P.id && got.uid == 1000 && got.start_ns == w->P.start_ns &&
	      got.exe && !strcmp(got.exe, "/usr/bin/cat") && got.cwd && !strcmp(got.cwd, "/work") &&
	      got.argv_len == 6 && !memcmp(got.argv, "cat\0a\0", 6),
	      "P's record reads back as written");
	prov_proc_free(&got);

	uint64_t d = mkdir_(v, ROOT, "notafile");
	CHECK_RC(use(v, &w->P, &w->P, REC_SELF, d, &ver), -EINVAL, "a use of a directory");
	CHECK_RC(use(v, &w->P, &w->P, REC_SELF, 987654321, &ver), -ENOENT, "a use of a missing inode");
}

/* 2. a generated version whose sources are read back from the store */
static void test_generated(struct mfs_volume *v, struct world *w)
{
	w->fb = mkfile(v, ROOT, "b");
	static const char bdata[] = "bravo: derived from a, forty-odd bytes";
	const struct prov_proc *procs[] = { &w->P };
	const bool record[] = { true };
	const struct prov_job_uses jobs[] = { uses_of(&w->P) };
	struct prov_gen g = { .procs = procs, .record = record, .n = 1, .jobs = jobs, .njobs = 1 };
	uint64_t ver = 0;
	CHECK_RC(put_gen(v, w->fb, 0, bdata, sizeof bdata - 1, &g, &ver), 0, "P writes b and closes it");
	CHECK(ver == 1, "b's first version is 1 (%llu)", (unsigned long long)ver);

	struct edges e;
	CHECK_RC(read_edges(v, SOURCES, w->fb, 1, &e), 0, "prov_sources b@1");
	CHECK(e.n == 1 && edge_is(&e, 0, w->fa, 1, w->P.id), "b@1 derives from exactly a@1, through P (%d edges)", e.n);
	CHECK_RC(read_edges(v, DERIVED, w->fa, 1, &e), 0, "prov_derived a@1");
	CHECK(e.n == 1 && edge_is(&e, 0, w->fb, 1, w->P.id), "exactly b@1 derives from a@1 (%d edges)", e.n);

	struct prov_version pv;
	CHECK_RC(read_version(v, w->fb, 1, &pv), 0, "read b@1");
	CHECK(pv.ngen == 1 && pv.gen[0] == w->P.id, "b@1 was generated by P alone (ngen %zu)", pv.ngen);
	CHECK(pv.size == sizeof bdata - 1, "b@1 has the size written (%llu)", (unsigned long long)pv.size);
	unsigned char want[PROV_DIGEST_LEN];
	sha256(bdata, sizeof bdata - 1, want);
	CHECK(pv.has_digest && !memcmp(pv.digest, want, PROV_DIGEST_LEN), "b@1's digest is SHA-256 of b's content");
	CHECK(pv.parent == ROOT && !strcmp(pv.name, "b"), "b@1 has b's name ('%s')", pv.name);
	struct inode_rec in;
	CHECK_RC(ns_getattr(v, w->fb, &in), 0, "getattr b");
	CHECK(pv.inode_version == in.version && pv.mtime.tv_sec == in.mtime.tv_sec &&
	      pv.mtime.tv_nsec == in.mtime.tv_nsec,
	      "b@1 records the inode's version and mtime");

	/* a use of a file whose newest version is up to date makes none */
	struct prov_proc R = mkproc(v, 150, "/usr/bin/wc", "wc\0b\0", 5, 0);
	CHECK_RC(use(v, &R, &R, REC_SELF, w->fb, &ver), 0, "another process uses b");
	CHECK(ver == 1, "a use after a generated version names it (%llu)", (unsigned long long)ver);
}

/* 3. a version two jobs had a part in */
static void test_known(struct mfs_volume *v, struct world *w)
{
	w->fc = mkfile(v, ROOT, "c");
	CHECK_RC(put(v, w->fc, 0, "charlie", 7), 0, "write c");
	w->Q = mkproc(v, 102, "/usr/bin/paste", "paste\0a\0c\0", 10, 0);
	uint64_t ver = 0;
	/* the uses the caller's list stands for, recorded as the capture does */
	CHECK_RC(use(v, &w->Q, &w->Q, REC_SELF, w->fc, &ver), 0, "Q uses c");
	CHECK(ver == 1, "c@1 observed (%llu)", (unsigned long long)ver);
	CHECK_RC(use(v, &w->Q, &w->Q, REC_SELF, w->fa, &ver), 0, "Q uses a");
	CHECK(ver == 1, "a is still at version 1 (%llu)", (unsigned long long)ver);
	struct edges e;
	CHECK_RC(read_edges(v, USED_BY, w->Q.id, 0, &e), 0, "prov_used_by Q");
	CHECK(w->fa < w->fc, "a's inode number is below c's");
	CHECK(e.n == 2 && edge_is(&e, 0, w->fa, 1, w->Q.id) && edge_is(&e, 1, w->fc, 1, w->Q.id),
	      "Q's uses, in (ino, version) order (%d)", e.n);

	uint64_t fg = mkfile(v, ROOT, "g");
	const struct prov_proc *procs[] = { &w->Q };
	const bool record[] = { false };
	/* P's job (which used a) and Q's (which used c, then a) */
	const struct prov_job_uses jobs[] = { uses_of(&w->P), uses_of(&w->Q) };
	struct prov_gen g = { .procs = procs, .record = record, .n = 1, .jobs = jobs, .njobs = 2 };
	CHECK_RC(put_gen(v, fg, 0, "golf", 4, &g, &ver), 0, "Q writes g, P's job and Q's having a part in it");
	CHECK(ver == 1, "g@1 (%llu)", (unsigned long long)ver);
	CHECK_RC(read_edges(v, SOURCES, fg, 1, &e), 0, "prov_sources g@1");
	CHECK(e.n == 2, "a version used twice is listed once (%d edges)", e.n);
	CHECK(edge_is(&e, 0, w->fa, 1, w->Q.id), "a@1 first, named by its later user Q");
	CHECK(edge_is(&e, 1, w->fc, 1, w->Q.id), "then c@1, through Q");

	CHECK_RC(read_edges(v, DERIVED, w->fc, 1, &e), 0, "prov_derived c@1");
	CHECK(e.n == 1 && edge_is(&e, 0, fg, 1, w->Q.id), "g@1 derives from c@1: Q used c and wrote g (%d edges)", e.n);
	CHECK_RC(read_edges(v, DERIVED, w->fa, 1, &e), 0, "prov_derived a@1");
	CHECK(e.n == 2 && edge_is(&e, 0, w->fb, 1, w->P.id) && edge_is(&e, 1, fg, 1, w->Q.id),
	      "a@1 is the source of b@1 (through P) and g@1, once (%d edges)", e.n);
	/* the same job listed twice: its larger count stands */
	uint64_t fg2 = mkfile(v, ROOT, "g2");
	const struct prov_job_uses twice[] = { { w->Q.id, 1 }, { w->Q.id, 2 }, { w->P.id, 0 } };
	struct prov_gen g2 = { .procs = procs, .record = record, .n = 1, .jobs = twice, .njobs = 3 };
	CHECK_RC(put_gen(v, fg2, 0, "golf2", 5, &g2, &ver), 0, "a job listed twice, and a job with no uses");
	CHECK_RC(read_edges(v, SOURCES, fg2, 1, &e), 0, "prov_sources g2@1");
	CHECK(e.n == 2 && edge_is(&e, 0, w->fa, 1, w->Q.id) && edge_is(&e, 1, w->fc, 1, w->Q.id),
	      "g2@1 derives from both of Q's uses (%d edges)", e.n);

	struct prov_proc got;
	CHECK_RC(read_proc(v, w->Q.id, &got), 0, "Q's record from its first use");
	prov_proc_free(&got);
}

/* 4. a feeder: what a process piping into the writer used counts */
static void test_feeder(struct mfs_volume *v, struct world *w)
{
	uint64_t fd = mkfile(v, ROOT, "d");
	CHECK_RC(put(v, fd, 0, "delta", 5), 0, "write d");
	struct prov_proc F = mkproc(v, 201, "/usr/bin/cat", "cat\0d\0", 6, 0);
	struct prov_proc W = mkproc(v, 202, "/usr/bin/sort", "sort\0", 5, 0);
	uint64_t vd = 0, ve = 0;
	CHECK_RC(use(v, &F, &F, REC_SELF, fd, &vd), 0, "F uses d");
	CHECK(vd == 1, "d@1 (%llu)", (unsigned long long)vd);

	uint64_t fe = mkfile(v, ROOT, "e");
	const struct prov_proc *procs[] = { &W };
	const bool record[] = { false };
	/* W's job used nothing; F's job feeds it */
	const struct prov_job_uses jobs[] = { uses_of(&W), uses_of(&F) };
	struct prov_gen g = { .procs = procs, .record = record, .n = 1, .jobs = jobs, .njobs = 2 };
	CHECK_RC(put_gen(v, fe, 0, "echo", 4, &g, &ve), 0, "W, fed by F, writes e");
	CHECK(ve == 1, "e@1 (%llu)", (unsigned long long)ve);
	struct edges e;
	CHECK_RC(read_edges(v, SOURCES, fe, ve, &e), 0, "prov_sources e@1");
	CHECK(e.n == 1 && edge_is(&e, 0, fd, vd, F.id), "e@1 derives from d@1 through the feeder F (%d edges)", e.n);
	CHECK_RC(read_edges(v, DERIVED, fd, vd, &e), 0, "prov_derived d@1");
	CHECK(e.n == 1 && edge_is(&e, 0, fe, ve, F.id), "e@1 derives from d@1 (%d edges)", e.n);
	struct prov_version pv;
	CHECK_RC(read_version(v, fe, ve, &pv), 0, "read e@1");
	CHECK(pv.ngen == 1 && pv.gen[0] == W.id, "a feeder is not a writer (ngen %zu)", pv.ngen);
	struct prov_proc got;
	CHECK_RC(read_proc(v, W.id, &got), -ENOENT, "record[0] false: no record of W");

	/* a use by another process of F's job counts for the job */
	uint64_t fd2 = mkfile(v, ROOT, "d2");
	CHECK_RC(put(v, fd2, 0, "delta two", 9), 0, "write d2");
	struct prov_proc K = mkproc(v, 203, "/usr/bin/head", "head\0d2\0", 8, F.id);
	uint64_t vd2 = 0;
	CHECK_RC(use(v, &K, &F, REC_BOTH, fd2, &vd2), 0, "K, of F's job, uses d2");
	CHECK(vd2 == 1, "d2@1 (%llu)", (unsigned long long)vd2);
	CHECK_RC(read_edges(v, USED_BY, K.id, 0, &e), 0, "prov_used_by K");
	CHECK(e.n == 1 && edge_is(&e, 0, fd2, 1, K.id), "K used d2@1 (%d)", e.n);
	CHECK_RC(read_edges(v, USED_BY, F.id, 0, &e), 0, "prov_used_by F's job");
	CHECK(e.n == 2 && edge_is(&e, 0, fd, 1, F.id) && edge_is(&e, 1, fd2, 1, K.id),
	      "the job lists its own use and K's, naming who used it (%d)", e.n);
	CHECK_RC(read_proc(v, K.id, &got), 0, "K's record");
	CHECK(got.job == F.id, "K's job is F");
	prov_proc_free(&got);

	uint64_t fe2 = mkfile(v, ROOT, "e2");
	struct prov_proc X = mkproc(v, 204, "/usr/bin/tee", "tee\0e2\0", 7, F.id);
	const struct prov_proc *xprocs[] = { &X };
	const struct prov_job_uses xjobs[] = { uses_of(&F) };
	struct prov_gen gx = { .procs = xprocs, .record = record, .n = 1, .jobs = xjobs, .njobs = 1 };
	uint64_t ve2 = 0;
	CHECK_RC(put_gen(v, fe2, 0, "echo two", 8, &gx, &ve2), 0, "X, of F's job, writes e2");
	CHECK_RC(read_edges(v, SOURCES, fe2, ve2, &e), 0, "prov_sources e2@1");
	CHECK(e.n == 2 && edge_is(&e, 0, fd, 1, F.id) && edge_is(&e, 1, fd2, 1, K.id),
	      "e2@1 derives from everything X's job used (%d edges)", e.n);
	CHECK_RC(read_edges(v, DERIVED, fd2, 1, &e), 0, "prov_derived d2@1");
	/* F's job had a part in e@1 too, but e@1 was closed before d2 was used */
	CHECK(e.n == 1 && edge_is(&e, 0, fe2, 1, K.id), "d2@1 is a source of e2@1 only, through K (%d edges)", e.n);
	CHECK_RC(read_edges(v, DERIVED, fd, 1, &e), 0, "prov_derived d@1 again");
	CHECK(e.n == 2 && edge_is(&e, 0, fe, 1, F.id) && edge_is(&e, 1, fe2, 1, F.id),
	      "d@1 is a source of e@1 and e2@1 (%d edges)", e.n);
}

/* 5. a version with no sources */
static void test_no_sources(struct mfs_volume *v)
{
	uint64_t fn = mkfile(v, ROOT, "n");
	struct prov_proc Z = mkproc(v, 301, "/usr/bin/date", "date\0", 5, 0);
	const struct prov_proc *procs[] = { &Z };
	struct prov_gen g = { .procs = procs, .n = 1 };
	uint64_t ver = 0;
	CHECK_RC(put_gen(v, fn, 0, "nothing", 7, &g, &ver), 0, "Z, which used nothing, writes n");
	CHECK(ver == 1, "n@1 (%llu)", (unsigned long long)ver);
	struct edges e;
	CHECK_RC(read_edges(v, SOURCES, fn, 1, &e), 0, "prov_sources of a version with no sources");
	CHECK(e.n == 0, "lists nothing (%d)", e.n);
	CHECK_RC(read_edges(v, DERIVED, fn, 1, &e), 0, "prov_derived of a version nothing used");
	CHECK(e.n == 0, "lists nothing (%d)", e.n);
	CHECK_RC(read_edges(v, SOURCES, fn, 99, &e), 0, "prov_sources of a version that does not exist");
	CHECK(e.n == 0, "lists nothing (%d)", e.n);
	struct prov_version pv;
	CHECK_RC(read_version(v, fn, 99, &pv), -ENOENT, "prov_version_get of a missing version");
	CHECK_RC(read_edges(v, USED_BY, Z.id, 0, &e), 0, "prov_used_by a process that used nothing");
	CHECK(e.n == 0, "lists nothing (%d)", e.n);
}

/* 6. the name a version records */
static void test_names(struct mfs_volume *v)
{
	uint64_t dir = mkdir_(v, ROOT, "dir6");
	uint64_t f = mkfile(v, dir, "real");
	struct prov_proc Z = mkproc(v, 401, "/usr/bin/touch", "touch\0", 6, 0);
	const struct prov_proc *procs[] = { &Z };
	struct prov_gen g = { .procs = procs, .n = 1, .parent = dir, .name = "given" };
	uint64_t ver = 0;
	struct prov_version pv;
	CHECK_RC(put_gen(v, f, 0, "six", 3, &g, &ver), 0, "a version with a name given");
	CHECK_RC(read_version(v, f, ver, &pv), 0, "read it");
	CHECK(ver == 1 && !strcmp(pv.name, "given") && pv.parent == dir, "the given name and directory ('%s')", pv.name);
	g.name = NULL;
	g.parent = 0;
	CHECK_RC(put_gen(v, f, 3, "!", 1, &g, &ver), 0, "a version with no name given");
	CHECK_RC(read_version(v, f, ver, &pv), 0, "read it");
	CHECK(ver == 2 && !strcmp(pv.name, "real") && pv.parent == dir, "the name from the store ('%s')", pv.name);
	struct vlist l;
	CHECK_RC(read_versions(v, f, &l), 0, "prov_versions");
	CHECK(l.n == 2 && l.ver[0] == 1 && l.ver[1] == 2, "lists versions 1 and 2 in order (%d)", l.n);
}

/* 7. the digest when the bytes written are not the whole file */
static void check_digest(struct mfs_volume *v, uint64_t ino, uint64_t ver, const void *want_data, size_t len,
			 const char *what)
{
	struct prov_version pv;
	unsigned char want[PROV_DIGEST_LEN];
	sha256(want_data, len, want);
	char back[256];
	CHECK(len <= sizeof back && ns_read(v, ino, 0, sizeof back, back) == (ssize_t)len && !memcmp(back, want_data, len),
	      "%s: the file holds the %zu bytes expected", what, len);
	int rc = read_version(v, ino, ver, &pv);
	CHECK(rc == 0 && pv.size == len && pv.has_digest && !memcmp(pv.digest, want, PROV_DIGEST_LEN),
	      "%s: the digest of the whole %zu bytes (rc %d, size %llu, has_digest %d)", what, len, rc,
	      (unsigned long long)pv.size, pv.has_digest);
}

static void test_digest(struct mfs_volume *v)
{
	struct prov_proc Z = mkproc(v, 501, "/usr/bin/dd", "dd\0", 3, 0);
	const struct prov_proc *procs[] = { &Z };
	struct prov_gen g = { .procs = procs, .n = 1 };
	unsigned char data[200];
	for (int i = 0; i < 100; i++)
		data[i] = (unsigned char)(i * 7 + 3);
	uint64_t fh = mkfile(v, ROOT, "h");
	uint64_t ver = 77, cur;
	CHECK_RC(ns_write_version(v, &C, fh, &(struct ns_extent){ 0, 100, (const char *)data }, 1, NULL, NULL, &ver), 0,
		 "100 bytes with no version");
	CHECK(ver == 0, "gen NULL reports no version (%llu)", (unsigned long long)ver);
	CHECK_RC(read_current(v, fh, &cur), -ENOENT, "and makes none");
	memset(data + 50, 'X', 10);
	CHECK_RC(put_gen(v, fh, 50, "XXXXXXXXXX", 10, &g, &ver), 0, "10 bytes at 50, closing a version");
	CHECK(ver == 1, "h@1 (%llu)", (unsigned long long)ver);
	char back[100];
	CHECK(ns_read(v, fh, 0, 100, back) == 100 && !memcmp(back, data, 100), "the file holds the bytes expected");
	check_digest(v, fh, 1, data, 100, "a write inside the file");

	/* no extents: only the version is made */
	CHECK_RC(ns_write_version(v, &C, fh, NULL, 0, NULL, &g, &ver), 0, "a version with nothing written");
	CHECK(ver == 2, "h@2 (%llu)", (unsigned long long)ver);
	check_digest(v, fh, 2, data, 100, "a version with nothing written");

	/* extents covering the file, but out of order */
	for (int i = 0; i < 100; i++)
		data[i] = (unsigned char)(255 - i);
	struct ns_extent two[2] = { { 40, 60, (const char *)data + 40 }, { 0, 40, (const char *)data } };
	CHECK_RC(ns_write_version(v, &C, fh, two, 2, NULL, &g, &ver), 0, "two extents, the later one first");
	check_digest(v, fh, ver, data, 100, "extents out of order");

	/* bytes past a hole: the rest reads as zeros */
	uint64_t fs = mkfile(v, ROOT, "sparse");
	memset(data, 0, sizeof data);
	memcpy(data + 90, "0123456789", 10);
	CHECK_RC(put_gen(v, fs, 90, "0123456789", 10, &g, &ver), 0, "10 bytes at 90 of an empty file");
	check_digest(v, fs, ver, data, 100, "a hole before the bytes");

	/* the file grown by a truncate: zeros past the stored bytes */
	struct ns_setattr sa = { .mask = MFS_SET_SIZE, .size = 200 };
	struct inode_rec in;
	CHECK_RC(ns_setattr(v, &C, fs, &sa, &in), 0, "truncate up to 200");
	CHECK_RC(ns_write_version(v, &C, fs, NULL, 0, NULL, &g, &ver), 0, "a version of the grown file");
	check_digest(v, fs, ver, data, 200, "a file grown by truncate");
}

/* 8. edges in the layout earlier versions of metafs wrote */
struct old_edge {
	uint64_t ino, ver, src, srcver, user;
};

static int put_old_edge(struct store_txn *t, void *arg)
{
	const struct old_edge *o = arg;
	unsigned char k[33], val[8];
	put_le64(val, o->user);
	k[0] = 'd';
	put_be64(k + 1, o->ino);
	put_be64(k + 9, o->ver);
	put_be64(k + 17, o->src);
	put_be64(k + 25, o->srcver);
	int rc = t->store->ops->prov_put(t, k, sizeof k, val, sizeof val);
	if (rc)
		return rc;
	k[0] = 'r';
	put_be64(k + 1, o->src);
	put_be64(k + 9, o->srcver);
	put_be64(k + 17, o->ino);
	put_be64(k + 25, o->ver);
	return t->store->ops->prov_put(t, k, sizeof k, val, sizeof val);
}

static void test_old_layout(struct mfs_volume *v)
{
	struct old_edge o = { 777001, 3, 777002, 5, 4242 };
	CHECK_RC(ns_txn_run(v, put_old_edge, &o), 0, "write an edge in the older layout");
	struct edges e;
	CHECK_RC(read_edges(v, SOURCES, o.ino, o.ver, &e), 0, "prov_sources over the older layout");
	CHECK(e.n == 1 && edge_is(&e, 0, o.src, o.srcver, o.user), "lists the old edge (%d edges)", e.n);
	CHECK_RC(read_edges(v, DERIVED, o.src, o.srcver, &e), 0, "prov_derived over the older layout");
	CHECK(e.n == 1 && edge_is(&e, 0, o.ino, o.ver, o.user), "lists the old edge the other way (%d edges)", e.n);
	/* a second old edge of the same version: both listed, in order */
	struct old_edge o2 = { 777001, 3, 777000, 9, 4343 };
	CHECK_RC(ns_txn_run(v, put_old_edge, &o2), 0, "a second old edge");
	CHECK_RC(read_edges(v, SOURCES, o.ino, o.ver, &e), 0, "prov_sources");
	CHECK(e.n == 2 && edge_is(&e, 0, o2.src, o2.srcver, o2.user) && edge_is(&e, 1, o.src, o.srcver, o.user),
	      "lists both, in (ino, version) order (%d edges)", e.n);
	CHECK_RC(read_edges(v, SOURCES, o.ino, o.ver + 1, &e), 0, "the next version");
	CHECK(e.n == 0, "has none of them (%d)", e.n);
}

/* 9. edges in the layout metafs wrote before uses were numbered: a
 * version's sources listed in one record, a job's use without its number,
 * and an empty record of the job's part in the version */
struct list_layout {
	uint64_t ino, ver, src, srcver, user, job;
};

static int put_list_layout(struct store_txn *t, void *arg)
{
	const struct list_layout *o = arg;
	const struct store_ops *ops = t->store->ops;
	unsigned char k[25], val[28];
	k[0] = 'd';
	put_be64(k + 1, o->ino);
	put_be64(k + 9, o->ver);
	put_le32(val, 1);
	put_le64(val + 4, o->src);
	put_le64(val + 12, o->srcver);
	put_le64(val + 20, o->user);
	int rc = ops->prov_put(t, k, 17, val, 28);
	k[0] = 'R';
	put_be64(k + 1, o->src);
	put_be64(k + 9, o->srcver);
	put_be64(k + 17, o->job);
	put_le64(val, o->user);
	put_le64(val + 8, 1);
	if (!rc)
		rc = ops->prov_put(t, k, 25, val, 16);
	k[0] = 'g';
	put_be64(k + 1, o->job);
	put_be64(k + 9, o->ino);
	put_be64(k + 17, o->ver);
	if (!rc)
		rc = ops->prov_put(t, k, 25, "", 0);
	return rc;
}

static void test_list_layout(struct mfs_volume *v)
{
	struct list_layout o = { 888001, 2, 888002, 4, 5151, 5150 };
	CHECK_RC(ns_txn_run(v, put_list_layout, &o), 0, "write a version in the listed layout");
	struct edges e;
	CHECK_RC(read_edges(v, SOURCES, o.ino, o.ver, &e), 0, "prov_sources over the listed layout");
	CHECK(e.n == 1 && edge_is(&e, 0, o.src, o.srcver, o.user), "lists the source (%d edges)", e.n);
	CHECK_RC(read_edges(v, DERIVED, o.src, o.srcver, &e), 0, "prov_derived over the listed layout");
	CHECK(e.n == 1 && edge_is(&e, 0, o.ino, o.ver, o.user), "finds the version through the job (%d edges)", e.n);
}

/* 10. a job that reads n files and writes n, one after the other (cp -r
 * inside the volume): output k derives from the first k inputs, and the
 * records grow with n, not with n squared */
static int count_bytes(void *arg, const void *key, size_t klen, const void *val, size_t len)
{
	uint64_t *c = arg;
	c[0]++;
	c[1] += klen + len;
	return 0;
}

static int prov_totals(struct mfs_volume *v, uint64_t c[2])
{
	c[0] = c[1] = 0;
	struct store_txn *t;
	int rc = v->store->ops->begin_read(v->store, &t);
	if (rc)
		return rc;
	rc = v->store->ops->prov_scan(t, "", 0, count_bytes, c);
	v->store->ops->abort(t);
	return rc;
}

static void test_copy_job(struct mfs_volume *v)
{
	enum { N = 300 };
	uint64_t dir = mkdir_(v, ROOT, "copy10");
	uint64_t in[N], out[N], before[2], after[2];
	CHECK_RC(prov_totals(v, before), 0, "count the provenance records");
	struct prov_proc J = mkproc(v, 601, "/usr/bin/cp", "cp\0-r\0", 7, 0);
	const struct prov_proc *procs[] = { &J };
	bool record[] = { false };
	int bad = 0;
	for (int k = 0; k < N; k++) {
		char name[32];
		snprintf(name, sizeof name, "in%d", k);
		in[k] = mkfile(v, dir, name);
		bad |= put(v, in[k], 0, name, strlen(name)) != 0;
		uint64_t ver;
		bad |= use(v, &J, &J, REC_SELF, in[k], &ver) != 0 || ver != 1;
		snprintf(name, sizeof name, "out%d", k);
		out[k] = mkfile(v, dir, name);
		const struct prov_job_uses jobs[] = { uses_of(&J) };
		struct prov_gen g = { .procs = procs, .record = record, .n = 1, .jobs = jobs, .njobs = 1,
				      .current_known = true, .current = 0 };
		bad |= put_gen(v, out[k], 0, name, strlen(name), &g, &ver) != 0 || ver != 1;
	}
	CHECK(!bad, "%d uses and versions recorded", N);
	CHECK_RC(prov_totals(v, after), 0, "count them again");
	uint64_t records = after[0] - before[0], bytes = after[1] - before[1];
	CHECK(records <= 6 * N + 8 && bytes <= 700 * N,
	      "the records grow with the files, not their square (%llu records, %llu bytes for %d files)",
	      (unsigned long long)records, (unsigned long long)bytes, N);
	struct edges e;
	int wrong = 0;
	for (int k = 0; k < N; k += 37) {
		bool ok = read_edges(v, SOURCES, out[k], 1, &e) == 0 && e.n == k + 1;
		for (int i = 0; i <= k && ok && i < 64; i++)
			ok = edge_is(&e, i, in[i], 1, J.id);
		wrong += !ok;
		ok = read_edges(v, DERIVED, in[k], 1, &e) == 0 && e.n == N - k;
		for (int i = 0; i < 64 && k + i < N && ok; i++)
			ok = edge_is(&e, i, out[k + i], 1, J.id);
		wrong += !ok;
	}
	CHECK(wrong == 0, "out_k derives from in_0..in_k, and in_k is a source of out_k..out_n (%d wrong)", wrong);
}

/* 11. numbers the caller knows: the version a use names, and the newest
 * version of a file it closes */
static void test_known_numbers(struct mfs_volume *v)
{
	uint64_t f = mkfile(v, ROOT, "known11");
	CHECK_RC(put(v, f, 0, "k", 1), 0, "write known11");
	struct prov_proc Z = mkproc(v, 701, "/usr/bin/awk", "awk\0", 4, 0);
	const struct prov_proc *procs[] = { &Z };
	const bool record[] = { true };
	struct prov_gen g = { .procs = procs, .record = record, .n = 1, .current_known = true, .current = 4 };
	uint64_t ver = 0, cur;
	CHECK_RC(put_gen(v, f, 1, "!", 1, &g, &ver), 0, "a close when the newest version is known to be 4");
	CHECK(ver == 5, "makes version 5 without looking (%llu)", (unsigned long long)ver);
	CHECK_RC(read_current(v, f, &cur), 0, "the newest version");
	CHECK(cur == 5, "is the last one made (%llu)", (unsigned long long)cur);
	g.current_known = false;
	CHECK_RC(put_gen(v, f, 2, "?", 1, &g, &ver), 0, "a close when it is not known");
	CHECK(ver == 6, "looks it up and makes version 6 (%llu)", (unsigned long long)ver);
	ver = 6;
	CHECK_RC(ns_prov_used(v, &Z, &Z, REC_SELF, f, ++*seq_of(Z.id), &ver), 0, "a use of a version the caller names");
	CHECK(ver == 6, "names that version (%llu)", (unsigned long long)ver);
	struct edges e;
	CHECK_RC(read_edges(v, USED_BY, Z.id, 0, &e), 0, "prov_used_by Z");
	CHECK(e.n == 1 && edge_is(&e, 0, f, 6, Z.id), "Z used known11@6 (%d)", e.n);
	CHECK_RC(read_edges(v, DERIVED, f, 6, &e), 0, "prov_derived known11@6");
	CHECK(e.n == 0, "nothing derives from it yet (%d)", e.n);
	const struct prov_job_uses jobs[] = { uses_of(&Z) };
	g.jobs = jobs;
	g.njobs = 1;
	g.current_known = true;
	g.current = 6;
	uint64_t f2 = mkfile(v, ROOT, "known11b");
	g.current = 0;
	CHECK_RC(put_gen(v, f2, 0, "b", 1, &g, &ver), 0, "Z writes known11b");
	CHECK_RC(read_edges(v, DERIVED, f, 6, &e), 0, "prov_derived known11@6");
	CHECK(e.n == 1 && edge_is(&e, 0, f2, 1, Z.id), "known11b@1 derives from it (%d)", e.n);
}

/* 12. uses recorded after the fact: together, and in a version's
 * transaction, which derives from them */
static void test_later_uses(struct mfs_volume *v)
{
	uint64_t fa = mkfile(v, ROOT, "later-a"), fb = mkfile(v, ROOT, "later-b"), fo = mkfile(v, ROOT, "later-out");
	struct prov_proc Z = mkproc(v, 801, "/usr/bin/cat", "cat\0", 4, 0);
	const struct prov_proc *procs[] = { &Z };
	const bool rec0[] = { true };
	struct prov_gen g0 = { .procs = procs, .record = rec0, .n = 1 };
	uint64_t va = 0, vb = 0;
	CHECK_RC(put_gen(v, fa, 0, "a", 1, &g0, &va), 0, "later-a@1");
	CHECK_RC(put_gen(v, fb, 0, "b", 1, &g0, &vb), 0, "later-b@1");
	struct prov_proc R = mkproc(v, 802, "/usr/bin/sort", "sort\0", 5, 0);
	/* two uses recorded together, the second one again (not fresh: the
	 * store is asked, and records it once) */
	struct prov_use_rec u[] = {
		{ &R, &R, fa, va, ++*seq_of(R.id), 1, true, false, true },
		{ &R, &R, fa, va, ++*seq_of(R.id), 2, false, false, false },
	};
	CHECK_RC(ns_prov_uses(v, u, 2), 0, "two uses recorded together");
	struct edges e;
	CHECK_RC(read_edges(v, USED_BY, R.id, 0, &e), 0, "prov_used_by R");
	CHECK(e.n == 1 && edge_is(&e, 0, fa, va, R.id), "R used later-a@1, once (%d)", e.n);
	struct prov_proc got;
	CHECK_RC(read_proc(v, R.id, &got), 0, "R's record came with its first use");
	prov_proc_free(&got);
	/* a use of b waiting, recorded in the transaction of the version it
	 * is a source of */
	struct prov_use_rec w[] = { { &R, &R, fb, vb, ++*seq_of(R.id), 3, false, false, true } };
	const struct prov_job_uses jobs[] = { uses_of(&R) };
	const bool rec1[] = { false };
	struct prov_gen g = { .procs = (const struct prov_proc *const[]){ &R }, .record = rec1, .n = 1, .jobs = jobs,
			      .njobs = 1, .uses = w, .nuses = 1 };
	uint64_t vo = 0;
	CHECK_RC(put_gen(v, fo, 0, "out", 3, &g, &vo), 0, "R writes later-out, its use of b waiting till then");
	CHECK_RC(read_edges(v, SOURCES, fo, vo, &e), 0, "prov_sources later-out@1");
	CHECK(e.n == 2 && edge_is(&e, 0, fa, va, R.id) && edge_is(&e, 1, fb, vb, R.id),
	      "later-out@1 derives from a and b (%d edges)", e.n);
	CHECK_RC(read_edges(v, DERIVED, fb, vb, &e), 0, "prov_derived later-b@1");
	CHECK(e.n == 1 && edge_is(&e, 0, fo, vo, R.id), "later-b@1 is a source of later-out@1 (%d)", e.n);
	/* a use of a file removed meanwhile is recorded still */
	uint64_t fc = mkfile(v, ROOT, "later-c");
	uint64_t vc = 0;
	CHECK_RC(put_gen(v, fc, 0, "c", 1, &g0, &vc), 0, "later-c@1");
	CHECK_RC(ns_unlink(v, &C, ROOT, "later-c", NULL), 0, "remove later-c");
	CHECK_RC(ns_reclaim(v, fc), 0, "free later-c");
	struct prov_use_rec x[] = { { &R, &R, fc, vc, ++*seq_of(R.id), 4, false, false, true } };
	CHECK_RC(ns_prov_uses(v, x, 1), 0, "a use of a file gone since");
	CHECK_RC(read_edges(v, USED_BY, R.id, 0, &e), 0, "prov_used_by R");
	CHECK(e.n == 3, "R used a, b and the removed c (%d)", e.n);
}

int main(void)
{
	char dir[256];
	struct mfs_volume *v = t_volume(dir, sizeof dir, MFS_DEFAULT_INLINE_THRESHOLD, 0);
	struct world w;
	memset(&w, 0, sizeof w);
	test_used(v, &w);
	test_generated(v, &w);
	test_known(v, &w);
	test_feeder(v, &w);
	test_no_sources(v);
	test_names(v);
	test_digest(v);
	test_old_layout(v);
	test_list_layout(v);
	test_copy_job(v);
	test_known_numbers(v);
	test_later_uses(v);
	mfs_close(v);
	t_rmrf(dir);
	return t_done();
}
