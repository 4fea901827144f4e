/* SPDX-License-Identifier: Apache-2.0 */
/* metafs indexer (follow the changelog outside a daemon) and metafs reindex. */
#include "tools.h"
#include "indexer.h"
#include "common.h"

#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

static volatile sig_atomic_t stopping;

static void on_signal(int sig)
{
	stopping = 1;
}

static void show_progress(void *arg, uint64_t done, uint64_t total)
{
	if (!isatty(STDERR_FILENO))
		return;
	fprintf(stderr, "\r\033[Kindexing: %llu/%llu inodes", (unsigned long long)done, (unsigned long long)total);
	if (done == total)
		fputc('\n', stderr);
}

static int open_volume(const char *arg, char *vol, size_t len, int flags, struct mfs_volume **v)
{
	if (resolve_volume(arg, vol, len))
		return -1;
	char err[1024] = "";
	if (mfs_open(vol, flags, v, err, sizeof err)) {
		die_msg("%s", err);
		return -1;
	}
	return 0;
}

int cmd_indexer(int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "once", no_argument, NULL, 'o' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	bool once = false;
	int c;
	optind = 1;
	while ((c = getopt_long(argc, argv, "h", longopts, NULL)) != -1) {
		if (c == 'o')
			once = true;
		else if (c == 'h') {
			printf("usage: metafs indexer VOLUME|PATH [--once]\n"
			       "  Applies the changelog to the volume's search index and keeps following\n"
			       "  it until interrupted (--once: stop when caught up). A mounted volume\n"
			       "  runs its indexer in the daemon unless mounted with -o noindex.\n");
			return 0;
		} else
			return 2;
	}
	if (optind != argc - 1) {
		die_msg("usage: metafs indexer VOLUME|PATH [--once]");
		return 2;
	}
	char vol[PATH_MAX], ipath[PATH_MAX];
	struct mfs_volume *v;
	if (open_volume(argv[optind], vol, sizeof vol, STORE_OPEN_READONLY, &v))
		return 1;
	indexer_default_path(vol, ipath, sizeof ipath);
	struct indexer *ix;
	int rc = indexer_open(v, ipath, &ix, show_progress, NULL);
	if (rc) {
		die_msg("%s: cannot open the index: %s", ipath, strerror(-rc));
		mfs_close(v);
		return 1;
	}
	struct sigaction sa = { .sa_handler = on_signal };
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	uint64_t total = 0;
	while (!stopping) {
		size_t applied;
		rc = indexer_step(ix, 0, &applied);
		if (rc)
			break;
		total += applied;
		if (applied)
			continue;
		if (once)
			break;
		mfs_sleep_us(50000);
	}
	uint64_t cursor = indexer_cursor(ix);
	indexer_close(ix);
	mfs_close(v);
	if (rc) {
		die_msg("%s: the indexer stopped at record %llu: %s", vol, (unsigned long long)cursor, strerror(-rc));
		return 1;
	}
	if (once)
		printf("applied %llu changelog records; the index is at record %llu\n", (unsigned long long)total,
		       (unsigned long long)cursor);
	return 0;
}

int cmd_reindex(int argc, char **argv)
{
	if (argc == 2 && (!strcmp(argv[1], "-h") || !strcmp(argv[1], "--help"))) {
		printf("usage: metafs reindex VOLUME|PATH\n"
		       "  Rebuilds the search index from the metadata and replaces the old one\n"
		       "  in one step; a running indexer picks the new one up.\n");
		return 0;
	}
	if (argc != 2) {
		die_msg("usage: metafs reindex VOLUME|PATH");
		return 2;
	}
	char vol[PATH_MAX], ipath[PATH_MAX];
	struct mfs_volume *v;
	if (open_volume(argv[1], vol, sizeof vol, STORE_OPEN_READONLY, &v))
		return 1;
	indexer_default_path(vol, ipath, sizeof ipath);
	int64_t t0 = mfs_now_ns();
	int rc = indexer_rebuild(v, ipath, show_progress, NULL);
	mfs_close(v);
	if (rc) {
		die_msg("%s: reindex failed: %s", vol, strerror(-rc));
		return 1;
	}
	printf("rebuilt %s in %.1f s\n", ipath, (double)(mfs_now_ns() - t0) / 1e9);
	return 0;
}
