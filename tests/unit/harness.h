/* SPDX-License-Identifier: Apache-2.0 */
/* A minimal TAP harness: each CHECK is one test point. */
#ifndef METAFS_TEST_HARNESS_H
#define METAFS_TEST_HARNESS_H

#include <errno.h>
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "metadata.h"

static int t_count, t_failed;

#define CHECK(cond, ...)                                                            \
	do {                                                                        \
		t_count++;                                                          \
		if (cond) {                                                         \
			printf("ok %d - ", t_count);                                \
		} else {                                                            \
			t_failed++;                                                 \
			printf("not ok %d - %s:%d: ", t_count, __FILE__, __LINE__); \
		}                                                                   \
		printf(__VA_ARGS__);                                                \
		printf("\n");                                                       \
	} while (0)

/* rc is an errno-style result; expected 0 or a negative errno */
#define CHECK_RC(rc, expected, what)                                                       \
	do {                                                                               \
		int rc_ = (rc);                                                            \
		CHECK(rc_ == (expected), "%s: got %d (%s), want %d", what, rc_,            \
		      rc_ < 0 ? strerror(-rc_) : "ok", (expected));                        \
	} while (0)

static int t_rm_cb(const char *p, const struct stat *sb, int f, struct FTW *w)
{
	return remove(p);
}

/* a cluster volume's database goes with the test's server */
static inline void t_rmrf(const char *path)
{
	if (strncmp(path, "mysql://", 8))
		nftw(path, t_rm_cb, 16, FTW_DEPTH | FTW_PHYS);
}

/* Formats a fresh volume and opens it: in a temporary directory, or, when
 * METAFS_TEST_MYSQL names a server (mysql://user@host:port), in a new
 * database there. */
static inline struct mfs_volume *t_volume(char *dir, size_t len, uint32_t inline_threshold, uint32_t chunk)
{
	static int n;
	const char *my = getenv("METAFS_TEST_MYSQL");
	if (my && *my) {
		snprintf(dir, len, "%s/metafs_unit_%d_%d", my, (int)getpid(), n++);
	} else {
		snprintf(dir, len, "/tmp/metafs-unit-XXXXXX");
		if (!mkdtemp(dir)) {
			perror("mkdtemp");
			exit(1);
		}
	}
	struct mfs_format_opts o = { inline_threshold, chunk };
	char err[512];
	if (mfs_format(dir, &o, err, sizeof err)) {
		fprintf(stderr, "format: %s\n", err);
		exit(1);
	}
	struct mfs_volume *v;
	if (mfs_open(dir, 0, &v, err, sizeof err)) {
		fprintf(stderr, "open: %s\n", err);
		exit(1);
	}
	return v;
}

static inline int t_done(void)
{
	printf("1..%d\n", t_count);
	return t_failed ? 1 : 0;
}

#endif
