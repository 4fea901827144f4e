/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Lineage query benchmark, below FUSE: builds a volume of N files whose
 * lineage is a data pipeline, through the namespace and provenance layers
 * as the daemon records it (processes, uses, versions), then measures
 *   - indexing the changelog, lineage records included, and a reindex;
 *   - `derived-from:` and `generated-by:` query latency (p50/p99) in the
 *     SQLite index, as `metafs find` runs them;
 *   - the walks `metafs lineage` makes in the store (up from a model, down
 *     from a raw file), and the walk `find` makes for a backend without the
 *     graph (prov_descendants);
 *   - beside them, the reference: the same derived-from answer computed by
 *     reading every lineage record of the volume, as a tool with no index
 *     would (reported as the ratio reference / index).
 * Prints one JSON object.
 *
 *   bench_lineage DIR N
 *
 * The pipeline, as fractions of N: raw files written by ingest jobs (55%);
 * stage 1, jobs reading 4 raw files and writing 2 (20%); stage 2, reading 3
 * stage-1 files and 1 raw and writing 2 (10%); stage 3, reading 4 stage-2
 * files and writing 2 (5%); models, each reading 100 stage-3 files (0.1%);
 * a `cp -r` job copying 10% of N raw files (each copy derives from every
 * file read before it); and a tenth of the stage-1 files written again by
 * other jobs (a second version, from other inputs).
 */
#include "indexer.h"
#include "common.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static struct mfs_ctx C = { 1000, 1000, 1 };

static uint64_t rnd_state = 0x2545F4914F6CDD1DULL;
static uint64_t rnd(void)
{
	rnd_state ^= rnd_state << 13;
	rnd_state ^= rnd_state >> 7;
	rnd_state ^= rnd_state << 17;
	return rnd_state;
}

static void die(const char *what, int rc)
{
	fprintf(stderr, "bench_lineage: %s: %s\n", what, strerror(rc < 0 ? -rc : rc));
	exit(1);
}

static void progress(const char *what, uint64_t done, uint64_t total)
{
	if (isatty(STDERR_FILENO) && (done % 10000 == 0 || done == total))
		fprintf(stderr, "\r\033[K%s %llu/%llu", what, (unsigned long long)done, (unsigned long long)total);
	if (isatty(STDERR_FILENO) && done == total)
		fputc('\n', stderr);
}

/* ---------------------------------------------------------------- building */

struct job {
	struct prov_proc p;
	uint64_t seq; /* uses recorded */
	bool recorded;
	char argv[96];
};

struct builder {
	struct mfs_volume *v;
	uint64_t dir; /* the current directory */
	uint64_t made, total;
	uint64_t last_made; /* the creation number of the last file made */
};

static void job_start(struct builder *b, struct job *j, const char *exe, const char *fmt, uint64_t k)
{
	memset(j, 0, sizeof *j);
	int rc = b->v->store->ops->ino_alloc(b->v->store, &j->p.id);
	if (rc)
		die("ino_alloc", rc);
	/* argv: words separated by NULs */
	int n = snprintf(j->argv, sizeof j->argv, fmt, (unsigned long long)k);
	for (int i = 0; i < n; i++)
		if (j->argv[i] == ' ')
			j->argv[i] = '\0';
	j->p.pid = (uint32_t)(j->p.id & 0x3fffff);
	j->p.uid = j->p.gid = 1000;
	j->p.start_ns = mfs_now_ns();
	j->p.job = j->p.id;
	j->p.exe = (char *)exe;
	j->p.cwd = (char *)"/work";
	j->p.argv = j->argv;
	j->p.argv_len = (size_t)n + 1;
}

static void use(struct builder *b, struct job *j, uint64_t ino, uint64_t version)
{
	const bool rec[2] = { !j->recorded, false };
	uint64_t ver = version;
	int rc = ns_prov_used(b->v, &j->p, &j->p, rec, ino, ++j->seq, &ver);
	if (rc)
		die("ns_prov_used", rc);
	j->recorded = true;
}

/* A file named NAME-K in the current directory (directories of 1000),
 * written by j: its version derives from j's uses so far. */
static uint64_t write_file(struct builder *b, struct job *j, const char *name, uint64_t k, uint64_t ino)
{
	struct inode_rec in;
	int rc;
	char nm[64];
	snprintf(nm, sizeof nm, "%s-%llu", name, (unsigned long long)k);
	if (!ino) {
		if (b->made % 1000 == 0) {
			char d[32];
			snprintf(d, sizeof d, "d%05llu", (unsigned long long)(b->made / 1000));
			if ((rc = ns_mkdir(b->v, &C, MFS_ROOT_INO, d, 0755, &in)))
				die("ns_mkdir", rc);
			b->dir = in.ino;
		}
		if ((rc = ns_mknod(b->v, &C, b->dir, nm, S_IFREG | 0644, 0, &in)))
			die("ns_mknod", rc);
		ino = in.ino;
		b->last_made = b->made;
		b->made++;
		progress("creating files", b->made, b->total);
	}
	const struct prov_proc *procs[] = { &j->p };
	bool record[] = { !j->recorded };
	struct prov_job_uses jobs[] = { { j->p.id, j->seq } };
	struct prov_gen g = { .procs = procs, .record = record, .n = 1, .jobs = jobs, .njobs = 1, .name = nm };
	char data[64];
	int len = snprintf(data, sizeof data, "%s %llu %llu\n", name, (unsigned long long)k,
			   (unsigned long long)(rnd() % 1000));
	struct ns_extent e = { 0, (size_t)len, data };
	uint64_t ver;
	if ((rc = ns_write_version(b->v, &C, ino, &e, 1, NULL, &g, &ver)))
		die("ns_write_version", rc);
	j->recorded = true;
	return ino;
}

/* A file's path from its creation number and name (see write_file). */
static void path_of(char *out, size_t len, uint64_t made, const char *name, uint64_t k)
{
	snprintf(out, len, "/d%05llu/%s-%llu", (unsigned long long)(made / 1000), name, (unsigned long long)k);
}

struct pipeline {
	uint64_t *raw_made, *s2_made;
	uint64_t *raw, nraw;
	uint64_t *s1, ns1;
	uint64_t *s2, ns2;
	uint64_t *s3, ns3;
	uint64_t *models, nmodels;
	uint64_t *copies, ncopies;
	uint64_t copy_first; /* the first file the copy job read */
	uint64_t *s1_inputs; /* the raw files (their numbers) each stage-1 job read, 4 each */
};

static uint64_t *alloc_u64(uint64_t n)
{
	uint64_t *v = calloc(n ? n : 1, sizeof *v);
	if (!v)
		die("calloc", ENOMEM);
	return v;
}

static void build(struct mfs_volume *v, uint64_t n, struct pipeline *pl)
{
	struct builder b = { .v = v };
	pl->nraw = n * 55 / 100;
	pl->ns1 = n * 20 / 100 / 2 * 2;
	pl->ns2 = n * 10 / 100 / 2 * 2;
	pl->ns3 = n * 5 / 100 / 2 * 2;
	pl->nmodels = n / 1000 ? n / 1000 : 1;
	pl->ncopies = n * 10 / 100;
	b.total = pl->nraw + pl->ns1 + pl->ns2 + pl->ns3 + pl->nmodels + pl->ncopies;
	pl->raw = alloc_u64(pl->nraw);
	pl->s1 = alloc_u64(pl->ns1);
	pl->s2 = alloc_u64(pl->ns2);
	pl->s3 = alloc_u64(pl->ns3);
	pl->models = alloc_u64(pl->nmodels);
	pl->copies = alloc_u64(pl->ncopies);
	pl->s1_inputs = alloc_u64(pl->ns1 / 2 * 4);
	pl->raw_made = alloc_u64(pl->nraw);
	pl->s2_made = alloc_u64(pl->ns2);
	struct job j;
	/* raw data: one ingest job per 1000 files */
	for (uint64_t i = 0; i < pl->nraw; i++) {
		if (i % 1000 == 0)
			job_start(&b, &j, "/usr/bin/curl", "curl -o batch%llu", i / 1000);
		pl->raw[i] = write_file(&b, &j, "raw", i, 0);
		pl->raw_made[i] = b.last_made;
	}
	for (uint64_t i = 0; i < pl->ns1; i += 2) {
		job_start(&b, &j, "/usr/bin/python3", "python3 stage1.py --part=%llu", i / 2);
		for (int k = 0; k < 4; k++) {
			uint64_t r = rnd() % pl->nraw;
			pl->s1_inputs[i / 2 * 4 + (uint64_t)k] = r;
			use(&b, &j, pl->raw[r], 1);
		}
		pl->s1[i] = write_file(&b, &j, "s1", i, 0);
		pl->s1[i + 1] = write_file(&b, &j, "s1", i + 1, 0);
	}
	for (uint64_t i = 0; i < pl->ns2; i += 2) {
		job_start(&b, &j, "/usr/bin/python3", "python3 stage2.py --part=%llu", i / 2);
		for (int k = 0; k < 3; k++)
			use(&b, &j, pl->s1[rnd() % pl->ns1], 1);
		use(&b, &j, pl->raw[rnd() % pl->nraw], 1);
		pl->s2[i] = write_file(&b, &j, "s2", i, 0);
		pl->s2_made[i] = b.last_made;
		pl->s2[i + 1] = write_file(&b, &j, "s2", i + 1, 0);
		pl->s2_made[i + 1] = b.last_made;
	}
	for (uint64_t i = 0; i < pl->ns3; i += 2) {
		job_start(&b, &j, "/usr/bin/python3", "python3 stage3.py --part=%llu", i / 2);
		for (int k = 0; k < 4; k++)
			use(&b, &j, pl->s2[rnd() % pl->ns2], 1);
		pl->s3[i] = write_file(&b, &j, "s3", i, 0);
		pl->s3[i + 1] = write_file(&b, &j, "s3", i + 1, 0);
	}
	for (uint64_t i = 0; i < pl->nmodels; i++) {
		job_start(&b, &j, "/usr/bin/python3", "python3 train.py --model=%llu", i);
		for (int k = 0; k < 100; k++)
			use(&b, &j, pl->s3[rnd() % pl->ns3], 1);
		pl->models[i] = write_file(&b, &j, "model", i, 0);
	}
	/* cp -r of a run of raw files: copy k derives from the k+1 read first */
	job_start(&b, &j, "/usr/bin/cp", "cp -r raw copies%llu", 0);
	pl->copy_first = pl->raw[0];
	for (uint64_t i = 0; i < pl->ncopies; i++) {
		use(&b, &j, pl->raw[i % pl->nraw], 1);
		pl->copies[i] = write_file(&b, &j, "copy", i, 0);
	}
	/* a tenth of stage 1 made again from other raw files: version 2 */
	for (uint64_t i = 0; i < pl->ns1; i += 10) {
		job_start(&b, &j, "/usr/bin/python3", "python3 redo.py --part=%llu", i);
		use(&b, &j, pl->raw[rnd() % pl->nraw], 1);
		write_file(&b, &j, "s1", i, pl->s1[i]);
	}
}

/* ---------------------------------------------------------------- measuring */

static int cmp_i64(const void *a, const void *b)
{
	int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
	return x < y ? -1 : x > y;
}

static int count_all(void *arg, const struct idx_hit *h)
{
	(*(long *)arg)++;
	return 0;
}

static int count_page(void *arg, const struct idx_hit *h)
{
	return ++*(long *)arg >= 100 ? 1 : 0;
}

static bool has_attr(void *arg, const char *name)
{
	struct idx_backend *be = arg;
	return be->ops->has_attr(be, name);
}

struct stat_line {
	double p50, p99;
	long results;
};

static void report(const char *label, const char *query, const struct stat_line *s, bool first)
{
	printf("%s\"%s\":{\"query\":\"%s\",\"results\":%ld,\"p50_ms\":%.3f,\"p99_ms\":%.3f}", first ? "" : ",", label,
	       query, s->results, s->p50, s->p99);
}

static struct stat_line percentiles(int64_t *lat, int runs, long results)
{
	qsort(lat, (size_t)runs, sizeof *lat, cmp_i64);
	return (struct stat_line){ (double)lat[runs / 2] / 1e6, (double)lat[runs * 99 / 100] / 1e6, results };
}

/* One query, runs times over targets (the query text made by mk), through
 * the backend as `metafs find` runs it; page: stop at 100 results. */
static struct stat_line run_query(struct idx_backend *be, int runs, bool page,
				  void (*mk)(void *arg, int run, char *q, size_t len), void *arg)
{
	int64_t *lat = calloc((size_t)runs, sizeof *lat);
	long total = 0;
	char err[512], q[512];
	for (int r = 0; r < runs; r++) {
		mk(arg, r, q, sizeof q);
		struct q_node *n;
		int pos;
		int64_t t0 = mfs_now_ns();
		if (q_parse(q, &n, err, sizeof err, &pos) || q_resolve(n, mfs_now_ns(), has_attr, be, err, sizeof err, &pos)) {
			fprintf(stderr, "bench_lineage: %s: %s\n", q, err);
			exit(1);
		}
		long hits = 0;
		struct idx_query_opts o = { .sort = IDX_SORT_SCORE };
		int rc = be->ops->query(be, n, &o, page ? count_page : count_all, &hits);
		lat[r] = mfs_now_ns() - t0;
		q_free(n);
		if (rc)
			die(q, rc);
		total += hits;
	}
	struct stat_line st = percentiles(lat, runs, total / runs);
	free(lat);
	return st;
}

struct targets {
	const struct pipeline *pl;
	const char *extra;
};

/* a raw file some stage-1 job read: descendants through every stage */
static void q_raw(void *arg, int run, char *q, size_t len)
{
	const struct targets *t = arg;
	const struct pipeline *pl = t->pl;
	uint64_t r = pl->s1_inputs[(uint64_t)run * 7919 % (pl->ns1 / 2 * 4)];
	char path[128];
	path_of(path, sizeof path, pl->raw_made[r], "raw", r);
	snprintf(q, len, "derived-from:%s%s", path, t->extra ? t->extra : "");
}

static void q_s2(void *arg, int run, char *q, size_t len)
{
	const struct targets *t = arg;
	uint64_t k = (uint64_t)run * 104729 % t->pl->ns2;
	char path[128];
	path_of(path, sizeof path, t->pl->s2_made[k], "s2", k);
	snprintf(q, len, "derived-from:%s", path);
}

static void q_copy(void *arg, int run, char *q, size_t len)
{
	const struct targets *t = arg;
	char path[128];
	path_of(path, sizeof path, t->pl->raw_made[0], "raw", 0);
	snprintf(q, len, "derived-from:%s", path);
}

static void q_fixed(void *arg, int run, char *q, size_t len)
{
	snprintf(q, len, "%s", ((const struct targets *)arg)->extra);
}

static void q_rare(void *arg, int run, char *q, size_t len)
{
	snprintf(q, len, "generated-by:--part=%d", run * 37);
}

/* ---------------------------------------------------------------- walks */

struct walk {
	struct u64_vec queue;
	uint64_t *seen;
	size_t nseen, cap;
	struct store_txn *t;
};

static bool seen_add(struct walk *w, uint64_t ino, uint64_t ver)
{
	uint64_t key = ino * 0x9E3779B97F4A7C15ULL ^ (ver + 1);
	if (!key)
		key = 1;
	if ((w->nseen + 1) * 2 > w->cap) {
		size_t cap = w->cap ? w->cap * 2 : 1024;
		uint64_t *ns = calloc(cap, sizeof *ns);
		if (!ns)
			die("calloc", ENOMEM);
		for (size_t i = 0; i < w->cap; i++) {
			if (!w->seen[i])
				continue;
			size_t j = (size_t)(w->seen[i] >> 7) & (cap - 1);
			while (ns[j])
				j = (j + 1) & (cap - 1);
			ns[j] = w->seen[i];
		}
		free(w->seen);
		w->seen = ns;
		w->cap = cap;
	}
	size_t j = (size_t)(key >> 7) & (w->cap - 1);
	while (w->seen[j]) {
		if (w->seen[j] == key)
			return false;
		j = (j + 1) & (w->cap - 1);
	}
	w->seen[j] = key;
	w->nseen++;
	return true;
}

static int walk_cb(void *arg, uint64_t ino, uint64_t ver, uint64_t proc)
{
	struct walk *w = arg;
	if (!seen_add(w, ino, ver))
		return 0;
	return u64_vec_push(&w->queue, ino) || u64_vec_push(&w->queue, ver) ? -ENOMEM : 0;
}

/* What `metafs lineage` reads for a whole walk up (down: derived) from
 * ino@ver: every version reached, with its record. Returns how many. */
static long lineage_walk(struct store_txn *t, uint64_t ino, uint64_t ver, bool down)
{
	struct walk w = { .t = t };
	walk_cb(&w, ino, ver, 0);
	for (size_t i = 0; i + 1 < w.queue.n; i += 2) {
		struct prov_version pv;
		int rc = prov_version_get(t, w.queue.v[i], w.queue.v[i + 1], &pv);
		if (rc && rc != -ENOENT)
			die("prov_version_get", rc);
		rc = down ? prov_derived(t, w.queue.v[i], w.queue.v[i + 1], walk_cb, &w)
			  : prov_sources(t, w.queue.v[i], w.queue.v[i + 1], walk_cb, &w);
		if (rc)
			die("walk", rc);
	}
	long n = (long)(w.queue.n / 2);
	free(w.queue.v);
	free(w.seen);
	return n;
}

/* ---------------------------------------------------------------- reference */

/* Every lineage edge in memory, as a tool without an index would gather
 * them: uses by source, and parts by job. */
struct edge {
	uint64_t a, b, c, d;
};

struct scan {
	struct edge *use, *made;
	size_t nuse, nmade, capuse, capmade;
};

static int scan_use(void *arg, uint64_t src, uint64_t srcver, uint64_t job, uint64_t seq)
{
	struct scan *s = arg;
	if (mfs_array_reserve(&s->use, &s->capuse, s->nuse, sizeof *s->use))
		return -ENOMEM;
	s->use[s->nuse++] = (struct edge){ src, srcver, job, seq };
	return 0;
}

static int scan_made(void *arg, uint64_t job, uint64_t n, uint64_t ino, uint64_t ver)
{
	struct scan *s = arg;
	if (mfs_array_reserve(&s->made, &s->capmade, s->nmade, sizeof *s->made))
		return -ENOMEM;
	s->made[s->nmade++] = (struct edge){ job, n, ino, ver };
	return 0;
}

static int edge_cmp(const void *x, const void *y)
{
	const struct edge *a = x, *b = y;
	if (a->a != b->a)
		return a->a < b->a ? -1 : 1;
	return a->b < b->b ? -1 : a->b > b->b;
}

static size_t lower(const struct edge *v, size_t n, uint64_t a)
{
	size_t lo = 0, hi = n;
	while (lo < hi) {
		size_t mid = (lo + hi) / 2;
		if (v[mid].a < a)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo;
}

/* derived-from: computed from every record: read them all, then walk */
static long reference_derived(struct mfs_volume *v, uint64_t ino)
{
	struct store_txn *t;
	int rc = v->store->ops->begin_read(v->store, &t);
	if (rc)
		die("begin_read", rc);
	struct scan s = { 0 };
	struct prov_graph_sink sink = { scan_use, scan_made, &s };
	if ((rc = prov_graph_scan(t, &sink)))
		die("prov_graph_scan", rc);
	qsort(s.use, s.nuse, sizeof *s.use, edge_cmp);
	qsort(s.made, s.nmade, sizeof *s.made, edge_cmp);
	struct walk w = { .t = t };
	for (size_t i = lower(s.use, s.nuse, ino); i < s.nuse && s.use[i].a == ino; i++)
		walk_cb(&w, ino, s.use[i].b, 0);
	for (size_t i = 0; i + 1 < w.queue.n; i += 2) {
		uint64_t x = w.queue.v[i], xv = w.queue.v[i + 1];
		for (size_t u = lower(s.use, s.nuse, x); u < s.nuse && s.use[u].a == x; u++) {
			if (s.use[u].b != xv && x != ino)
				continue;
			for (size_t m = lower(s.made, s.nmade, s.use[u].c); m < s.nmade && s.made[m].a == s.use[u].c;
			     m++)
				if (s.made[m].b >= s.use[u].d)
					walk_cb(&w, s.made[m].c, s.made[m].d, 0);
		}
	}
	/* of the files reached, those whose newest version was */
	long found = 0;
	for (size_t i = 0; i + 1 < w.queue.n; i += 2) {
		uint64_t cur;
		if (w.queue.v[i] != ino && prov_current(t, w.queue.v[i], &cur) == 0 && cur == w.queue.v[i + 1])
			found++;
	}
	v->store->ops->abort(t);
	free(s.use);
	free(s.made);
	free(w.queue.v);
	free(w.seen);
	return found;
}

static void index_diff(void *arg, const char *what, uint64_t ino, const char *detail)
{
	fprintf(stderr, "bench_lineage: index: inode %llu: %s\n", (unsigned long long)ino, detail);
}

int main(int argc, char **argv)
{
	if (argc < 3) {
		fprintf(stderr, "usage: bench_lineage DIR N\n");
		return 2;
	}
	const char *dir = argv[1];
	uint64_t n = strtoull(argv[2], NULL, 10);
	if (n < 10000) {
		fprintf(stderr, "bench_lineage: N must be at least 10000\n");
		return 2;
	}
	char err[512], ipath[4096];
	struct mfs_format_opts fo = { MFS_DEFAULT_INLINE_THRESHOLD, 0 };
	if (mfs_format(dir, &fo, err, sizeof err)) {
		fprintf(stderr, "bench_lineage: %s\n", err);
		return 1;
	}
	struct mfs_volume *v;
	if (mfs_open(dir, 0, &v, err, sizeof err)) {
		fprintf(stderr, "bench_lineage: %s\n", err);
		return 1;
	}
	/* the index of the empty volume, which then follows the changelog */
	indexer_default_path(dir, ipath, sizeof ipath);
	struct indexer *ix;
	if (indexer_open(v, ipath, &ix, NULL, NULL))
		return 1;
	struct pipeline pl = { 0 };
	int64_t t0 = mfs_now_ns();
	build(v, n, &pl);
	double build_s = (double)(mfs_now_ns() - t0) / 1e9;
	uint64_t first, last;
	v->store->ops->changelog_bounds(v->store, &first, &last);

	/* indexing the changelog, as the daemon does */
	t0 = mfs_now_ns();
	uint64_t applied = 0;
	size_t got;
	do {
		int rc = indexer_step(ix, 0, &got);
		if (rc)
			die("indexer_step", rc);
		applied += got;
		progress("indexing records", applied, last);
	} while (got);
	double index_s = (double)(mfs_now_ns() - t0) / 1e9;
	indexer_close(ix);
	t0 = mfs_now_ns();
	char rpath[4200];
	snprintf(rpath, sizeof rpath, "%s.bench", ipath);
	int rc = indexer_rebuild(v, rpath, NULL, NULL);
	if (rc)
		die("indexer_rebuild", rc);
	double reindex_s = (double)(mfs_now_ns() - t0) / 1e9;
	/* the index kept as the changes came and the one built afresh hold
	 * the same graph and documents */
	long diffs = idx_sqlite_compare(ipath, rpath, index_diff, NULL);
	unlink(rpath);
	if (diffs) {
		fprintf(stderr, "bench_lineage: the index followed and the index rebuilt differ (%ld)\n", diffs);
		return 1;
	}
	struct stat ist;
	stat(ipath, &ist);

	struct idx_backend *be;
	if (idx_sqlite_open(ipath, IDX_OPEN_READONLY, &be, err, sizeof err)) {
		fprintf(stderr, "bench_lineage: %s\n", err);
		return 1;
	}
	enum { RUNS = 50 };
	struct targets tg = { &pl, NULL };
	printf("{\"files\":%llu,\"changelog_records\":%llu,\"build_s\":%.1f,\"index_records_per_s\":%.0f,"
	       "\"reindex_s\":%.1f,\"index_bytes\":%lld,\"queries\":{",
	       (unsigned long long)n, (unsigned long long)last, build_s, (double)applied / index_s, reindex_s,
	       (long long)ist.st_size);
	struct stat_line raw = run_query(be, RUNS, false, q_raw, &tg);
	report("derived_from_raw", "derived-from:RAW", &raw, true);
	struct stat_line s2 = run_query(be, RUNS, false, q_s2, &tg);
	report("derived_from_stage2", "derived-from:S2", &s2, false);
	tg.extra = " generated-by:stage3.py";
	struct stat_line both = run_query(be, RUNS, false, q_raw, &tg);
	report("derived_from_and_generated_by", "derived-from:RAW generated-by:stage3.py", &both, false);
	tg.extra = "generated-by:stage2.py";
	struct stat_line gen = run_query(be, RUNS, true, q_fixed, &tg);
	report("generated_by_page", "generated-by:stage2.py (first 100)", &gen, false);
	struct stat_line rare = run_query(be, RUNS, false, q_rare, &tg);
	report("generated_by_rare_word", "generated-by:--part=K", &rare, false);
	struct stat_line copy = run_query(be, 5, false, q_copy, &tg);
	report("derived_from_copied_file", "derived-from:(the first file cp -r read)", &copy, false);
	printf("},\"walks\":{");
	be->ops->close(be);

	/* the store's walks */
	struct store_txn *t;
	if ((rc = v->store->ops->begin_read(v->store, &t)))
		die("begin_read", rc);
	int64_t lat[RUNS];
	long reached = 0;
	for (int r = 0; r < RUNS; r++) {
		int64_t s = mfs_now_ns();
		reached += lineage_walk(t, pl.models[(uint64_t)r % pl.nmodels], 1, false);
		lat[r] = mfs_now_ns() - s;
	}
	struct stat_line up = percentiles(lat, RUNS, reached / RUNS);
	report("lineage_up_model", "metafs lineage MODEL (every version up)", &up, true);
	reached = 0;
	for (int r = 0; r < RUNS; r++) {
		int64_t s = mfs_now_ns();
		reached += lineage_walk(t, pl.raw[pl.s1_inputs[(uint64_t)r * 7919 % (pl.ns1 / 2 * 4)]], 1, true);
		lat[r] = mfs_now_ns() - s;
	}
	struct stat_line down = percentiles(lat, RUNS, reached / RUNS);
	report("lineage_down_raw", "metafs lineage RAW --down", &down, false);
	reached = 0;
	for (int r = 0; r < RUNS; r++) {
		struct u64_vec out = { 0 };
		int64_t s = mfs_now_ns();
		if ((rc = prov_descendants(t, pl.raw[pl.s1_inputs[(uint64_t)r * 7919 % (pl.ns1 / 2 * 4)]], &out)))
			die("prov_descendants", rc);
		lat[r] = mfs_now_ns() - s;
		reached += (long)out.n;
		free(out.v);
	}
	struct stat_line desc = percentiles(lat, RUNS, reached / RUNS);
	report("descendants_walk_raw", "derived-from:RAW by walking the store (no index graph)", &desc, false);
	v->store->ops->abort(t);

	/* the reference: the same answer from every record, read each time;
	 * the index's and the walk's answers must be the same files */
	enum { REF_RUNS = 3 };
	int64_t rlat[REF_RUNS];
	long rfound = 0;
	if (idx_sqlite_open(ipath, IDX_OPEN_READONLY, &be, err, sizeof err)) {
		fprintf(stderr, "bench_lineage: %s\n", err);
		return 1;
	}
	tg.extra = NULL;
	for (int r = 0; r < REF_RUNS; r++) {
		uint64_t target = pl.raw[pl.s1_inputs[(uint64_t)r * 7919 % (pl.ns1 / 2 * 4)]];
		int64_t s = mfs_now_ns();
		long found = reference_derived(v, target);
		rlat[r] = mfs_now_ns() - s;
		rfound += found;
		struct targets one = { &pl, NULL };
		long hits = 0;
		char q[512], e2[512];
		q_raw(&one, r, q, sizeof q);
		struct q_node *qn;
		int pos;
		if (q_parse(q, &qn, e2, sizeof e2, &pos) || q_resolve(qn, 0, has_attr, be, e2, sizeof e2, &pos))
			return 1;
		struct idx_query_opts o = { .sort = IDX_SORT_SCORE };
		be->ops->query(be, qn, &o, count_all, &hits);
		q_free(qn);
		struct u64_vec out = { 0 };
		if (v->store->ops->begin_read(v->store, &t) || prov_descendants(t, target, &out))
			return 1;
		v->store->ops->abort(t);
		if (hits != found || (long)out.n != found) {
			fprintf(stderr, "bench_lineage: %s: the index found %ld files, the store walk %zu, the scan %ld\n",
				q, hits, out.n, found);
			return 1;
		}
		free(out.v);
	}
	be->ops->close(be);
	struct stat_line ref = percentiles(rlat, REF_RUNS, rfound / REF_RUNS);
	report("reference_scan_raw", "derived-from:RAW from a scan of every lineage record", &ref, false);
	/* the index's time for the same three targets */
	if (idx_sqlite_open(ipath, IDX_OPEN_READONLY, &be, err, sizeof err))
		return 1;
	struct stat_line same = run_query(be, REF_RUNS, false, q_raw, &tg);
	be->ops->close(be);
	report("index_same_targets", "derived-from:RAW, the reference's targets, in the index", &same, false);
	printf("},\"ratio_reference_to_index\":%.0f}\n", same.p50 > 0 ? ref.p50 / same.p50 : 0);
	mfs_close(v);
	return 0;
}
