/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Search benchmark, below FUSE: builds a volume of N files with tags and
 * JSON xattrs through the namespace layer, then measures
 *   - indexing throughput (changelog records applied per second),
 *   - a full reindex,
 *   - freshness: commit-to-indexed delay while changes arrive at a set rate,
 *   - query latency (p50/p99) of tag, name-word, range and JSON-field queries.
 * Prints one JSON object; bench/run_search.sh puts it beside the figures for
 * find(1) over a mount.
 *
 *   bench_index DIR N [RATE]
 */
#include "indexer.h"
#include "common.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static struct mfs_ctx C = { 1000, 1000, 1 };
static const char *const words[] = { "report", "summary", "beach", "invoice", "draft", "model", "dataset",
				     "photo", "scan", "notes", "final", "backup", "trip", "budget", "plan" };
static const char *const tags[] = { "beach", "work", "family", "urgent", "archive", "review", "todo", "2024" };

static uint64_t rnd_state = 0x9E3779B97F4A7C15ULL;
static uint64_t rnd(void)
{
	rnd_state ^= rnd_state << 13;
	rnd_state ^= rnd_state >> 7;
	rnd_state ^= rnd_state << 17;
	return rnd_state;
}

static void progress(const char *what, uint64_t done, uint64_t total)
{
	if (isatty(STDERR_FILENO) && (done % 10000 == 0 || done == total))
		fprintf(stderr, "\r\033[K%s %llu/%llu", what, (unsigned long long)done, (unsigned long long)total);
	if (isatty(STDERR_FILENO) && done == total)
		fputc('\n', stderr);
}

static void populate(struct mfs_volume *v, uint64_t n)
{
	uint64_t dir = 0;
	struct inode_rec in;
	char name[128], val[256];
	for (uint64_t i = 0; i < n; i++) {
		if (i % 1000 == 0) {
			snprintf(name, sizeof name, "d%05llu", (unsigned long long)(i / 1000));
			if (ns_mkdir(v, &C, MFS_ROOT_INO, name, 0755, &in))
				exit(1);
			dir = in.ino;
		}
		snprintf(name, sizeof name, "%s-%s-%llu.dat", words[rnd() % 15], words[rnd() % 15], (unsigned long long)i);
		if (ns_mknod(v, &C, dir, name, S_IFREG | 0644, 0, &in))
			exit(1);
		snprintf(val, sizeof val, "%s,%s", tags[rnd() % 8], tags[rnd() % 8]);
		ns_setxattr(v, &C, in.ino, "user.xdg.tags", val, strlen(val), 0);
		int len = snprintf(val, sizeof val, "{\"bicycles\":%llu,\"score\":%.3f,\"camera\":\"cam%llu\"}",
				   (unsigned long long)(rnd() % 20), (double)(rnd() % 1000) / 10.0,
				   (unsigned long long)(rnd() % 50));
		ns_setxattr(v, &C, in.ino, "user.annotations", val, (size_t)len, 0);
		progress("creating files", i + 1, n);
	}
}

static int cmp_i64(const void *a, const void *b)
{
	int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
	return x < y ? -1 : x > y;
}

static int count_hit(void *arg, const struct idx_hit *h)
{
	return ++*(long *)arg >= 100 ? 1 : 0; /* a page of results */
}

static bool has_attr(void *arg, const char *name)
{
	struct idx_backend *be = arg;
	return be->ops->has_attr(be, name);
}

struct writer_arg {
	struct mfs_volume *v;
	double rate;
	double seconds;
	volatile bool done;
};

static void *writer(void *p)
{
	struct writer_arg *w = p;
	int64_t start = mfs_now_ns(), next = start;
	int64_t step = (int64_t)(1e9 / w->rate);
	uint64_t i = 0;
	struct inode_rec in;
	while (mfs_now_ns() - start < (int64_t)(w->seconds * 1e9)) {
		char name[64];
		snprintf(name, sizeof name, "fresh-%llu", (unsigned long long)i++);
		ns_mknod(w->v, &C, MFS_ROOT_INO, name, S_IFREG | 0644, 0, &in);
		next += step;
		int64_t now = mfs_now_ns();
		if (next > now)
			mfs_sleep_us((unsigned)((next - now) / 1000));
	}
	w->done = true;
	return NULL;
}

/* Freshness: per record, the time from its commit to the commit of the
 * index batch that holds it. */
struct fresh_acc {
	int64_t *v;
	size_t n, cap;
	int64_t now;
	uint64_t from, to;
};

static int fresh_cb(void *arg, const struct cl_rec *r)
{
	struct fresh_acc *a = arg;
	if (r->seq > a->to)
		return 1;
	if (mfs_array_reserve(&a->v, &a->cap, a->n, sizeof *a->v))
		return -ENOMEM;
	a->v[a->n++] = a->now - r->time_ns;
	return 0;
}

int main(int argc, char **argv)
{
	if (argc < 3) {
		fprintf(stderr, "usage: bench_index DIR N [RATE]\n");
		return 2;
	}
	const char *dir = argv[1];
	uint64_t n = strtoull(argv[2], NULL, 10);
	double rate = argc > 3 ? atof(argv[3]) : 5000;
	char err[512], ipath[4096];
	struct mfs_format_opts fo = { MFS_DEFAULT_INLINE_THRESHOLD, 0 };
	if (mfs_format(dir, &fo, err, sizeof err)) {
		fprintf(stderr, "bench_index: %s\n", err);
		return 1;
	}
	struct mfs_volume *v;
	if (mfs_open(dir, 0, &v, err, sizeof err)) {
		fprintf(stderr, "bench_index: %s\n", err);
		return 1;
	}
	indexer_default_path(dir, ipath, sizeof ipath);
	struct indexer *ix;
	if (indexer_open(v, ipath, &ix, NULL, NULL))
		return 1;

	int64_t t0 = mfs_now_ns();
	populate(v, n);
	double create_s = (double)(mfs_now_ns() - t0) / 1e9;
	uint64_t first, last;
	v->store->ops->changelog_bounds(v->store, &first, &last);

	/* 1. indexing throughput: the whole changelog from the start */
	t0 = mfs_now_ns();
	uint64_t applied = 0;
	size_t got;
	do {
		if (indexer_step(ix, 0, &got))
			return 1;
		applied += got;
		progress("indexing records", applied, last);
	} while (got);
	double index_s = (double)(mfs_now_ns() - t0) / 1e9;

	/* 2. full reindex */
	t0 = mfs_now_ns();
	char rpath[4200];
	snprintf(rpath, sizeof rpath, "%s.bench", ipath);
	if (indexer_rebuild(v, rpath, NULL, NULL))
		return 1;
	double reindex_s = (double)(mfs_now_ns() - t0) / 1e9;
	unlink(rpath);

	/* 3. freshness while changes arrive at `rate` per second */
	struct writer_arg w = { v, rate, 5.0, false };
	pthread_t th;
	pthread_create(&th, NULL, writer, &w);
	struct fresh_acc fa = { 0 };
	while (!w.done) {
		uint64_t before = indexer_cursor(ix);
		if (indexer_step(ix, 0, &got))
			return 1;
		if (got) {
			fa.now = mfs_now_ns();
			fa.to = indexer_cursor(ix);
			v->store->ops->changelog_read(v->store, before + 1, fresh_cb, &fa);
		} else {
			mfs_sleep_us(20000); /* the daemon's idle poll */
		}
	}
	pthread_join(th, NULL);
	qsort(fa.v, fa.n, sizeof *fa.v, cmp_i64);
	double fresh_p50 = fa.n ? (double)fa.v[fa.n / 2] / 1e6 : 0;
	double fresh_p99 = fa.n ? (double)fa.v[fa.n * 99 / 100] / 1e6 : 0;

	/* 4. query latency, through a fresh read-only connection as `find` has */
	struct idx_backend *be;
	if (idx_sqlite_open(ipath, IDX_OPEN_READONLY, &be, err, sizeof err))
		return 1;
	const char *queries[] = { "tag:urgent", "name:invoice", "size:0 type:f nlink:1", "annotations.bicycles:>17",
				  "annotations.camera:cam7 tag:beach", "tag:beach annotations.camera:cam7",
				  "name:invoice annotations.camera:cam7", "invoice" };
	/* the last is a free word, ranked: every match is scored before the
	 * best 100 are known */
	const char *labels[] = { "tag", "name_word", "attribute_range", "json_range", "json_and_tag",
				 "tag_and_json", "name_and_json", "ranked_free_word" };
	printf("{\"files\":%llu,\"changelog_records\":%llu,\"create_s\":%.2f,", (unsigned long long)n,
	       (unsigned long long)last, create_s);
	printf("\"index_records_per_s\":%.0f,\"reindex_s\":%.2f,", (double)applied / index_s, reindex_s);
	printf("\"freshness_rate_per_s\":%.0f,\"freshness_p50_ms\":%.1f,\"freshness_p99_ms\":%.1f,\"queries\":{",
	       rate, fresh_p50, fresh_p99);
	for (size_t qi = 0; qi < MFS_ARRAY_LEN(queries); qi++) {
		enum { RUNS = 50 };
		int64_t lat[RUNS];
		long hits = 0;
		for (int r = 0; r < RUNS; r++) {
			struct q_node *q;
			int pos;
			int64_t s = mfs_now_ns();
			if (q_parse(queries[qi], &q, err, sizeof err, &pos) ||
			    q_resolve(q, mfs_now_ns(), has_attr, be, err, sizeof err, &pos)) {
				fprintf(stderr, "bench_index: %s: %s\n", queries[qi], err);
				return 1;
			}
			hits = 0;
			struct idx_query_opts o = { .sort = IDX_SORT_SCORE };
			be->ops->query(be, q, &o, count_hit, &hits);
			lat[r] = mfs_now_ns() - s;
			q_free(q);
		}
		qsort(lat, RUNS, sizeof lat[0], cmp_i64);
		printf("%s\"%s\":{\"query\":\"%s\",\"results\":%ld,\"p50_ms\":%.2f,\"p99_ms\":%.2f}", qi ? "," : "",
		       labels[qi], queries[qi], hits, (double)lat[RUNS / 2] / 1e6, (double)lat[RUNS * 99 / 100] / 1e6);
	}
	printf("}}\n");
	be->ops->close(be);
	free(fa.v);
	indexer_close(ix);
	mfs_close(v);
	return 0;
}
